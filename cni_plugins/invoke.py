"""Delegation to another plugin (IPAM) found on CNI_PATH, as the spec's runtime would call it.

When the binary found is one of ours (installed by cni_plugins.install or a pinnace console
script) it runs in this process instead of as a new one: same code, same input, same output,
without paying a second interpreter start.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from cni_plugins.spec import ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_INVALID_ENV, CniError, Invocation

MARKER = "pinnace-cni-plugin:"
_OWN_RE = re.compile(rb"pinnace-cni-plugin: ([a-z-]+)|pinnace_cmd\.cni_(bridge|host_local|loopback)\b")


def find_plugin(plugin_type: str, paths: tuple[str, ...]) -> Path:
    """The executable for `plugin_type` in the CNI_PATH directories, first match wins."""
    if not paths:
        raise CniError(
            ERR_INVALID_ENV, f"required env variables [CNI_PATH] missing (to find {plugin_type!r})"
        )
    if not plugin_type or "/" in plugin_type:
        raise CniError(ERR_INVALID_CONFIG, f"invalid plugin type {plugin_type!r}")
    for directory in paths:
        candidate = Path(directory) / plugin_type
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise CniError(ERR_INVALID_CONFIG, f"failed to find plugin {plugin_type!r} in path {list(paths)}")


def own_plugin(exe: Path) -> str | None:
    """The registry name when `exe` is one of our plugins, else None."""
    try:
        with exe.open("rb") as f:
            head = f.read(1024)
    except OSError:
        return None
    match = _OWN_RE.search(head)
    if match is None:
        return None
    if match.group(1):
        return match.group(1).decode()
    return match.group(2).decode().replace("_", "-")


def delegate(plugin_type: str, command: str, stdin: bytes, inv: Invocation) -> dict[str, Any] | None:
    """Run `command` of plugin `plugin_type`; the parsed result for ADD, else None.

    A failing delegate's error is re-raised unchanged so its code reaches the runtime.
    """
    from cni_plugins import registry  # noqa: PLC0415 - registry imports the plugins that import us

    exe = find_plugin(plugin_type, inv.path)
    env = dict(inv.env)
    env["CNI_COMMAND"] = command
    name = own_plugin(exe)
    if name in registry.PLUGINS:
        out = registry.run(name, env, stdin)
        code, stdout, stderr = out.code, out.stdout, out.stderr
    else:
        proc = subprocess.run([str(exe)], input=stdin, env=env, capture_output=True, check=False)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    if code != 0:
        try:
            data = json.loads(stdout)
        except ValueError:
            data = None
        if isinstance(data, dict) and "code" in data:
            raise CniError.from_dict(data)
        raise CniError(
            ERR_INTERNAL,
            f"plugin {plugin_type} {command} failed with exit code {code}",
            stderr.decode()[-500:],
        )
    if command != "ADD":
        return None
    try:
        result = json.loads(stdout)
    except ValueError as exc:
        raise CniError(ERR_INTERNAL, f"plugin {plugin_type} returned invalid JSON: {exc}") from None
    if not isinstance(result, dict):
        raise CniError(ERR_INTERNAL, f"plugin {plugin_type} returned a non-object result")
    return result
