"""emptyDir medium Memory through the VolumeManager: a tmpfs is mounted (sizeLimit becomes its
size), only once across repeated syncs, and unmounted on teardown. mount/umount are recorded
instead of run (no root in unit tests); the real mount is covered by the integration tier."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from services.kubelet.volumes import emptydir
from services.kubelet.volumes.errors import VolumeError
from services.kubelet.volumes.manager import VolumeManager
from tests.unit.kubelet.fakes import Objects, pod


@pytest.fixture
def mounts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Commands emptydir would run; a path counts as mounted after its recorded mount."""
    calls: list[tuple[str, ...]] = []
    mounted: set[str] = set()
    real_ismount = os.path.ismount

    async def run(*args: str) -> None:
        calls.append(args)
        if args[0] == "mount":
            mounted.add(args[-1])
        elif args[0] == "umount":
            mounted.discard(args[-1])

    def ismount(path: str | os.PathLike[str]) -> bool:
        return os.fspath(path) in mounted or real_ismount(path)

    monkeypatch.setattr(emptydir, "_run", run)
    monkeypatch.setattr(emptydir.os.path, "ismount", ismount)
    return calls


async def test_memory_medium_mounts_tmpfs_with_size_once_and_unmounts(
    tmp_path: Path, mounts: list[tuple[str, ...]]
) -> None:
    p = pod("p", "ns")
    mem = p.spec.volumes.add(name="cache")
    mem.empty_dir.medium = "Memory"
    mem.empty_dir.size_limit = "64Mi"
    p.spec.volumes.add(name="disk").empty_dir.SetInParent()
    manager = VolumeManager(tmp_path / "pods", Objects())
    mounted = await manager.setup(p)
    path = tmp_path / "pods/uid-1/volumes/kubernetes.io~empty-dir/cache"
    assert mounted["cache"].path == path and path.is_dir()
    assert mounts == [
        ("mount", "-t", "tmpfs", "-o", f"mode=0777,size={64 * 1024 * 1024}", "tmpfs", str(path))
    ]
    # The disk-backed one is a plain world-writable directory, never a mount.
    disk = tmp_path / "pods/uid-1/volumes/kubernetes.io~empty-dir/disk"
    assert stat.S_IMODE(disk.stat().st_mode) == 0o777
    await manager.setup(p)  # every sync repeats setup: no second mount on top
    assert len(mounts) == 1
    await manager.teardown("uid-1")
    assert mounts[1:] == [("umount", str(path))]
    assert not (tmp_path / "pods/uid-1").exists()


async def test_memory_medium_without_size_limit_has_no_size_option(
    tmp_path: Path, mounts: list[tuple[str, ...]]
) -> None:
    p = pod("p", "ns")
    p.spec.volumes.add(name="cache").empty_dir.medium = "Memory"
    await VolumeManager(tmp_path / "pods", Objects()).setup(p)
    assert [m[:5] for m in mounts] == [("mount", "-t", "tmpfs", "-o", "mode=0777")]


async def test_unknown_medium_is_refused_and_nothing_mounted(
    tmp_path: Path, mounts: list[tuple[str, ...]]
) -> None:
    p = pod("p", "ns")
    p.spec.volumes.add(name="cache").empty_dir.medium = "HugePages"
    with pytest.raises(VolumeError, match='emptyDir medium "HugePages" is not supported'):
        await VolumeManager(tmp_path / "pods", Objects()).setup(p)
    assert mounts == []


async def test_failed_tmpfs_mount_surfaces_as_volume_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fail(*args: str) -> None:
        raise VolumeError(f"{' '.join(args)}: permission denied")

    monkeypatch.setattr(emptydir, "_run", fail)
    p = pod("p", "ns")
    p.spec.volumes.add(name="cache").empty_dir.medium = "Memory"
    with pytest.raises(VolumeError, match="permission denied"):
        await VolumeManager(tmp_path / "pods", Objects()).setup(p)
