"""hostPath: a path of the node, checked against its declared type (Kubernetes' checks:
DirectoryOrCreate and FileOrCreate create it, the others must already be what they say)."""

from __future__ import annotations

import stat
from pathlib import Path

from pinnace.api.core.v1 import core_pb2
from services.kubelet.volumes.errors import VolumeError


def setup(source: core_pb2.HostPathVolumeSource) -> Path:
    path = Path(source.path)
    kind = source.type if source.HasField("type") else ""
    if kind == "DirectoryOrCreate":
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.touch(mode=0o644)
    checks = {
        "Directory": (stat.S_ISDIR, "directory"),
        "DirectoryOrCreate": (stat.S_ISDIR, "directory"),
        "File": (stat.S_ISREG, "file"),
        "FileOrCreate": (stat.S_ISREG, "file"),
        "Socket": (stat.S_ISSOCK, "socket"),
        "CharDevice": (stat.S_ISCHR, "character device"),
        "BlockDevice": (stat.S_ISBLK, "block device"),
    }
    if kind in checks:
        test, what = checks[kind]
        try:
            mode = path.stat().st_mode
        except OSError:
            raise VolumeError(f"hostPath type check failed: {path} does not exist") from None
        if not test(mode):
            raise VolumeError(f"hostPath type check failed: {path} is not a {what}")
    elif kind:
        raise VolumeError(f'hostPath type "{kind}" is not supported')
    return path
