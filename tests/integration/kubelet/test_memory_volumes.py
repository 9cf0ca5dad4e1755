"""Secret, downwardAPI and projected volumes live on a tmpfs of their own (real mounts, root):
secrets never reach the node's disk, a sync does not stack mounts, teardown unmounts."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinnace.api.core.v1 import core_pb2
from services.kubelet.volumes.errors import VolumeError
from services.kubelet.volumes.manager import VolumeManager
from tests.integration.conftest import missing
from tests.unit.kubelet.fakes import Objects, pod

MOUNTS = Path("/proc/self/mounts")


def mounts_at(path: Path) -> list[str]:
    """The filesystem types mounted exactly at path, innermost last."""
    found = []
    for line in MOUNTS.read_text(encoding="utf-8").splitlines():
        _, target, fstype, *_ = line.split()
        if target == str(path):
            found.append(fstype)
    return found


def unmount_leftovers(root: Path) -> None:
    """A failed assertion must not leave tmpfs mounts behind under the test's directory."""
    lines = MOUNTS.read_text(encoding="utf-8").splitlines()
    targets = [line.split()[1] for line in lines if line.split()[1].startswith(str(root))]
    for target in reversed(targets):
        subprocess.run(["umount", target], check=False)


@pytest.fixture
def pods_dir(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        missing("mounting a tmpfs needs root")
    root = tmp_path / "pods"
    yield root
    unmount_leftovers(root)


def volume_pod() -> core_pb2.Pod:
    p = pod("p", "ns")
    p.spec.volumes.add(name="sec").secret.secret_name = "s"
    d = p.spec.volumes.add(name="info")
    d.downward_api.items.add(path="name").field_ref.field_path = "metadata.name"
    source = p.spec.volumes.add(name="all").projected.sources.add()
    source.secret.name = "s"
    p.spec.volumes.add(name="conf").config_map.name = "cm"
    p.spec.volumes.add(name="scratch").empty_dir.SetInParent()
    return p


async def test_secret_volumes_are_tmpfs_and_go_with_the_pod(pods_dir: Path) -> None:
    objects = Objects(
        secrets={("ns", "s"): core_pb2.Secret(data={"password": b"hunter2"})},
        config_maps={("ns", "cm"): core_pb2.ConfigMap(data={"k": "v"})},
    )
    manager = VolumeManager(pods_dir, objects)
    p = volume_pod()
    mounted = await manager.setup(p)
    for name in ("sec", "info", "all"):
        assert mounts_at(mounted[name].path) == ["tmpfs"], name
    for name in ("conf", "scratch"):
        assert mounts_at(mounted[name].path) == [], name
    assert (mounted["sec"].path / "password").read_bytes() == b"hunter2"
    assert (mounted["all"].path / "password").read_bytes() == b"hunter2"
    assert (mounted["info"].path / "name").read_text() == "p"

    # A sync repeats the setup: the same single tmpfs, the updated secret in it.
    objects.secrets[("ns", "s")] = core_pb2.Secret(data={"password": b"rotated"})
    again = await manager.setup(p)
    assert mounts_at(again["sec"].path) == ["tmpfs"]
    assert (again["sec"].path / "password").read_bytes() == b"rotated"

    await manager.teardown(p.metadata.uid)
    for name in ("sec", "info", "all"):
        assert mounts_at(mounted[name].path) == []
    assert not manager.pod_dir(p.metadata.uid).exists()


async def test_missing_secret_fails_and_teardown_still_unmounts(pods_dir: Path) -> None:
    manager = VolumeManager(pods_dir, Objects())
    p = pod("p", "ns")
    p.spec.volumes.add(name="sec").secret.secret_name = "absent"
    with pytest.raises(VolumeError, match="not found"):
        await manager.setup(p)
    await manager.teardown(p.metadata.uid)
    assert not manager.pod_dir(p.metadata.uid).exists()
    assert str(pods_dir) not in MOUNTS.read_text(encoding="utf-8")
