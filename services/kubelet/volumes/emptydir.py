"""emptyDir: a directory that lives as long as the pod, on the node's disk or, with medium
Memory, on a tmpfs mounted for it (sizeLimit becomes the tmpfs size)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pinnace.api.core.v1 import core_pb2
from services.kubelet.volumes.errors import VolumeError
from services.machinery.quantity import parse_quantity

PLUGIN = "kubernetes.io~empty-dir"


async def _run(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise VolumeError(f"{' '.join(args)}: {err.decode(errors='replace').strip()}")


async def mount_tmpfs(path: Path, options: str) -> None:
    """Mount a tmpfs at path unless one is there already (setups repeat on every sync)."""
    path.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(path):
        await _run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path))


async def setup(path: Path, source: core_pb2.EmptyDirVolumeSource) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if source.medium == "Memory":
        options = "mode=0777"
        if source.HasField("size_limit") and source.size_limit:
            options += f",size={parse_quantity(source.size_limit).int_value()}"
        await mount_tmpfs(path, options)
    else:
        path.chmod(0o777)
    if source.medium not in ("", "Memory"):
        raise VolumeError(f'emptyDir medium "{source.medium}" is not supported')


async def teardown(path: Path) -> None:
    if os.path.ismount(path):
        await _run("umount", str(path))
