"""Install the plugin executables (`pinnace-bridge`, ...) into a CNI bin directory.

Each is a small script run by this interpreter with `-I -S` that puts this source tree on
sys.path and calls the thin client, so a runtime finds it by type name on CNI_PATH like any
other plugin. The marker line lets our bridge recognise our IPAM and run it in-process.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from cni_plugins.invoke import MARKER
from cni_plugins.registry import EXECUTABLE_PREFIX, PLUGINS
from cni_plugins.thin import DEFAULT_SOCKET

_TEMPLATE = """#!{thin_python} -IS
# {marker} {name}
# Installed by pinnace (cni_plugins.install): the thin client of the pinnace CNI daemon,
# which runs the plugin in-process when no daemon listens on the socket.
import sys
sys.path.insert(0, {root!r})
from cni_plugins.thin import main
sys.exit(main({name!r}, {socket!r}, {python!r}))
"""


# Interpreters that start faster than a pyenv/venv build (Debian's is built with PGO and LTO:
# ~8 ms against ~10 ms here); the thin client needs nothing but the standard library.
THIN_CANDIDATES = ("/usr/bin/python3",)


def thin_python(default: str) -> str:
    """The interpreter for the thin client: a system python3 when there is one."""
    for candidate in THIN_CANDIDATES:
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return default


def script(name: str, *, python: str, socket_path: str, thin: str = "") -> str:
    """The text of the executable for plugin `name`; `python` must have pyroute2 and iptc."""
    root = str(Path(__file__).resolve().parent.parent)
    return _TEMPLATE.format(
        thin_python=thin or python, python=python, marker=MARKER, name=name, root=root, socket=socket_path
    )


def install(
    bin_dir: str | Path,
    *,
    python: str = sys.executable,
    socket_path: str = DEFAULT_SOCKET,
    names: Iterable[str] = tuple(PLUGINS),
    thin: str | None = None,
) -> list[Path]:
    """Write the executables into `bin_dir` (atomically); returns their paths.

    `thin` is the interpreter that runs the thin client (default: a system python3 if
    present, else `python`); `python` is the one that runs the plugin when no daemon answers.
    """
    thin_exe = thin if thin is not None else thin_python(python)
    target = Path(bin_dir)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in names:
        path = target / f"{EXECUTABLE_PREFIX}{name}"
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(script(name, python=python, socket_path=socket_path, thin=thin_exe))
        tmp.chmod(0o755)
        tmp.replace(path)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """`pinnace-cni-install DIR [--socket PATH] [--python EXE]`."""
    parser = argparse.ArgumentParser(description="Install pinnace CNI plugins into a CNI bin directory.")
    parser.add_argument("bin_dir", help="CNI bin directory, e.g. /opt/cni/bin")
    parser.add_argument("--socket", default=DEFAULT_SOCKET, help="daemon socket ('' = never use a daemon)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with pyroute2 and iptc")
    parser.add_argument("--thin-python", default=None, help="interpreter for the thin client")
    args = parser.parse_args(argv)
    for path in install(args.bin_dir, python=args.python, socket_path=args.socket, thin=args.thin_python):
        print(path)
    return 0
