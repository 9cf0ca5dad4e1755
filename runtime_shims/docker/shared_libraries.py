"""The shared libraries a dynamically linked binary loads, so a local image can carry a Debian
program (redis-server, redis-cli) without a Debian base image, which no registry can give us.

The dynamic loader finds its libraries in the image at the same paths as on the build host
(`/lib/x86_64-linux-gnu`, `/lib64/ld-linux-x86-64.so.2` on Debian), so each library is packed
at the path `ldd` reports, with the content of the file that path resolves to.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

# "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)";
# the vDSO line has no path and is provided by the kernel.
_LDD_LINE = re.compile(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")


class MissingLibraryError(RuntimeError):
    """The build host lacks a library the binary needs; the image would not start."""


def parse_ldd(output: str) -> list[str]:
    """Absolute paths of the libraries `ldd` listed, in its order; raises on a missing one."""
    missing = [m.group(1) for line in output.splitlines() if (m := _NOT_FOUND.match(line))]
    if missing:
        raise MissingLibraryError(f"libraries not found: {', '.join(missing)}")
    return [m.group(1) for line in output.splitlines() if (m := _LDD_LINE.match(line))]


def shared_libraries(binary: Path) -> dict[str, bytes]:
    """Maps each library of `binary` (image path, no leading slash) to its content."""
    result = subprocess.run(["ldd", str(binary)], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise MissingLibraryError(f"ldd {binary}: {(result.stderr or result.stdout).strip()}")
    return {path.lstrip("/"): Path(path).read_bytes() for path in parse_ldd(result.stdout)}
