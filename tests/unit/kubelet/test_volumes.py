from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri
from services.kubelet.volumes import hostpath
from services.kubelet.volumes.atomic_writer import write_atomic
from services.kubelet.volumes.errors import VolumeError
from services.kubelet.volumes.manager import VolumeManager
from tests.unit.kubelet.fakes import Objects, pod


def test_atomic_writer_swaps_the_whole_set(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").read_bytes() == b"1" and (target / "dir" / "b").read_bytes() == b"2"
    assert (target / "a").is_symlink() and (target / "..data").is_symlink()
    assert stat.S_IMODE((target / "dir" / "b").stat().st_mode) == 0o600
    assert not write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert write_atomic(target, {"a": (b"new", 0o644)})
    assert (target / "a").read_bytes() == b"new" and not (target / "dir").exists()
    assert len([p for p in target.iterdir() if p.name.startswith("..") and not p.is_symlink()]) == 1
    with pytest.raises(ValueError):
        write_atomic(target, {"../escape": (b"x", 0o644)})


async def test_secret_configmap_downward_layout_and_items(tmp_path: Path) -> None:
    objects = Objects(
        secrets={("ns", "s"): core_pb2.Secret(data={"user": b"admin", "pw": b"x"})},
        config_maps={("ns", "cm"): core_pb2.ConfigMap(data={"k": "v"}, binary_data={"b": b"\x00"})},
    )
    p = pod("p", "ns")
    p.metadata.labels["app"] = "web"
    v = p.spec.volumes.add(name="sec")
    v.secret.secret_name = "s"
    v.secret.items.add(key="user", path="u/name", mode=0o400)
    p.spec.volumes.add(name="conf").config_map.name = "cm"
    d = p.spec.volumes.add(name="info")
    d.downward_api.items.add(path="labels").field_ref.field_path = "metadata.labels"
    d.downward_api.items.add(path="name").field_ref.field_path = "metadata.name"
    p.spec.volumes.add(name="scratch").empty_dir.SetInParent()
    manager = VolumeManager(tmp_path / "pods", objects, memory_backed=False)
    mounted = await manager.setup(p)
    sec = tmp_path / "pods/uid-1/volumes/kubernetes.io~secret/sec"
    assert mounted["sec"].path == sec and mounted["sec"].read_only
    assert (sec / "u/name").read_bytes() == b"admin" and not (sec / "pw").exists()
    assert stat.S_IMODE((sec / "u/name").stat().st_mode) == 0o400
    conf = tmp_path / "pods/uid-1/volumes/kubernetes.io~configmap/conf"
    assert (conf / "k").read_text() == "v" and (conf / "b").read_bytes() == b"\x00"
    info = tmp_path / "pods/uid-1/volumes/kubernetes.io~downward-api/info"
    assert (info / "labels").read_text() == 'app="web"' and (info / "name").read_text() == "p"
    assert (tmp_path / "pods/uid-1/volumes/kubernetes.io~empty-dir/scratch").is_dir()
    c = core_pb2.Container(name="c")
    c.volume_mounts.add(name="scratch", mount_path="/data", sub_path="sub")
    c.volume_mounts.add(name="conf", mount_path="/etc/conf")
    mounts = manager.mounts(c, mounted)
    assert mounts[0].host_path.endswith("scratch/sub") and not mounts[0].readonly
    assert mounts[1].readonly and mounts[1].propagation == cri.PROPAGATION_PRIVATE
    objects.secrets.clear()
    with pytest.raises(VolumeError, match='secret "s" not found'):
        await manager.setup(p)
    await manager.teardown("uid-1")
    assert not (tmp_path / "pods/uid-1").exists()


async def test_pvc_must_be_bound_to_hostpath_or_local(tmp_path: Path) -> None:
    objects = Objects()
    p = pod()
    p.spec.volumes.add(name="data").persistent_volume_claim.claim_name = "claim"
    manager = VolumeManager(tmp_path / "pods", objects, memory_backed=False)
    with pytest.raises(VolumeError, match="not found"):
        await manager.setup(p)
    claim = core_pb2.PersistentVolumeClaim()
    claim.spec.volume_name = "pv1"
    objects.claims[("ns", "claim")] = claim
    with pytest.raises(VolumeError, match="not bound"):
        await manager.setup(p)
    claim.status.phase = "Bound"
    pv = core_pb2.PersistentVolume()
    pv.spec.local.path = str(tmp_path)
    objects.volumes["pv1"] = pv
    assert (await manager.setup(p))["data"].path == tmp_path


def test_hostpath_types(tmp_path: Path) -> None:
    made = hostpath.setup(core_pb2.HostPathVolumeSource(path=str(tmp_path / "a/b"), type="DirectoryOrCreate"))
    assert made.is_dir()
    f = hostpath.setup(core_pb2.HostPathVolumeSource(path=str(tmp_path / "f"), type="FileOrCreate"))
    assert f.is_file()
    with pytest.raises(VolumeError, match="is not a directory"):
        hostpath.setup(core_pb2.HostPathVolumeSource(path=str(f), type="Directory"))
    with pytest.raises(VolumeError, match="does not exist"):
        hostpath.setup(core_pb2.HostPathVolumeSource(path=str(tmp_path / "nope"), type="File"))
    assert hostpath.setup(core_pb2.HostPathVolumeSource(path=str(tmp_path / "any"))) == tmp_path / "any"
