"""GarbageCollector against an in-memory CRI: which dead containers, sandboxes and images go."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import grpc

from pinnace.cri.v1 import api_pb2 as cri
from services.kubelet import labels as keys
from services.kubelet.config import KubeletConfig
from services.kubelet.cri_client import CRI, CRIError
from services.kubelet.gc import GarbageCollector


class GcCRI:
    """Holds containers, sandboxes and images; records what the collector removes."""

    def __init__(self, mountpoint: str = "", used_bytes: int = 0) -> None:
        self.containers: list[cri.Container] = []
        self.sandboxes: list[cri.PodSandbox] = []
        self.images: list[cri.Image] = []
        self.mountpoint, self.used_bytes = mountpoint, used_bytes
        self.removed_containers: list[str] = []
        self.removed_sandboxes: list[str] = []
        self.removed_images: list[str] = []
        self.fail_remove: set[str] = set()

    async def list_containers(self, labels: dict[str, str] | None = None) -> list[cri.Container]:
        return [c for c in self.containers if all(c.labels.get(k) == v for k, v in (labels or {}).items())]

    async def list_sandboxes(self, labels: dict[str, str] | None = None) -> list[cri.PodSandbox]:
        return [s for s in self.sandboxes if all(s.labels.get(k) == v for k, v in (labels or {}).items())]

    async def remove_container(self, container_id: str) -> None:
        if container_id in self.fail_remove:
            raise CRIError("RemoveContainer", grpc.StatusCode.UNKNOWN, "busy")
        self.removed_containers.append(container_id)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self.removed_sandboxes.append(sandbox_id)

    async def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        if method == "ImageFsInfo":
            usage = cri.FilesystemUsage(fs_id=cri.FilesystemIdentifier(mountpoint=self.mountpoint))
            usage.used_bytes.value = self.used_bytes
            return cri.ImageFsInfoResponse(image_filesystems=[usage])
        if method == "ListImages":
            return cri.ListImagesResponse(images=self.images)
        if method == "RemoveImage":
            self.removed_images.append(request.image.image)
            return cri.RemoveImageResponse()
        raise AssertionError(f"unexpected CRI call {method}")


def _container(cid: str, uid: str, name: str, created: int, state: int, sandbox: str = "sb") -> cri.Container:
    return cri.Container(
        id=cid,
        pod_sandbox_id=sandbox,
        created_at=created,
        state=state,  # type: ignore[arg-type]
        metadata=cri.ContainerMetadata(name=name),
        labels={keys.MANAGED_BY: "true", keys.POD_UID: uid, keys.CONTAINER_NAME: name},
    )


def _collector(runtime: GcCRI, **config: Any) -> GarbageCollector:
    runtime_as_cri: CRI = runtime  # type: ignore[assignment]
    return GarbageCollector(KubeletConfig(**config), runtime_as_cri)


async def test_dead_containers_beyond_limit_removed_newest_dead_and_running_kept() -> None:
    rt = GcCRI()
    exited, running = cri.CONTAINER_EXITED, cri.CONTAINER_RUNNING
    rt.containers = [
        _container("a-old", "u1", "app", 1, exited),
        _container("a-mid", "u1", "app", 2, exited),
        _container("a-new", "u1", "app", 3, exited),
        _container("a-run", "u1", "app", 4, running),
        _container("s-only", "u1", "sidecar", 1, exited),
        _container("other-pod", "u2", "app", 1, exited),
    ]
    # Not the kubelet's: never listed, never touched.
    foreign = _container("foreign", "u1", "app", 0, exited)
    del foreign.labels[keys.MANAGED_BY]
    rt.containers.append(foreign)
    removed, _, _ = await _collector(rt).collect()
    assert removed == 2 and sorted(rt.removed_containers) == ["a-mid", "a-old"]


async def test_max_dead_per_container_two_and_failed_removal_not_counted() -> None:
    rt = GcCRI()
    exited = cri.CONTAINER_EXITED
    rt.containers = [_container(f"c{i}", "u1", "app", i, exited) for i in range(5)]
    rt.fail_remove = {"c0"}
    removed, _, _ = await _collector(rt, max_dead_per_container=2).collect()
    assert removed == 2 and sorted(rt.removed_containers) == ["c1", "c2"]


async def test_dead_sandboxes_removed_unless_ready_used_or_newest() -> None:
    rt = GcCRI()
    managed = {keys.MANAGED_BY: "true", keys.POD_UID: "u1"}
    notready, ready = cri.SANDBOX_NOTREADY, cri.SANDBOX_READY
    rt.sandboxes = [
        cri.PodSandbox(id="old-empty", created_at=1, state=notready, labels=managed),  # type: ignore[arg-type]
        cri.PodSandbox(id="old-used", created_at=2, state=notready, labels=managed),  # type: ignore[arg-type]
        cri.PodSandbox(id="old-ready", created_at=3, state=ready, labels=managed),  # type: ignore[arg-type]
        cri.PodSandbox(id="newest", created_at=4, state=notready, labels=managed),  # type: ignore[arg-type]
    ]
    rt.containers = [_container("c", "u1", "app", 1, cri.CONTAINER_EXITED, sandbox="old-used")]
    _, removed, _ = await _collector(rt).collect()
    assert removed == 1 and rt.removed_sandboxes == ["old-empty"]


def _capacity(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


async def test_images_removed_above_high_threshold_until_below_low_skipping_used_and_pinned(
    tmp_path: Path,
) -> None:
    capacity = _capacity(tmp_path)
    rt = GcCRI(mountpoint=str(tmp_path), used_bytes=capacity * 90 // 100)
    six = capacity * 6 // 100
    rt.images = [
        cri.Image(id="sha256:pinned", size=capacity // 2, pinned=True),
        cri.Image(id="sha256:used", repo_tags=["app:1"], size=capacity // 2),
        cri.Image(id="sha256:a", size=six),
        cri.Image(id="sha256:b", size=six),
        cri.Image(id="sha256:c", size=six),
    ]
    c = _container("c", "u1", "app", 1, cri.CONTAINER_RUNNING)
    c.image.image = "app:1"
    rt.containers = [c]
    _, _, removed = await _collector(rt, image_minimum_age=0.0).collect()
    # 90% - 2 x 6% = 78% <= the 80% low threshold: two of the three unused images go, no more.
    assert removed == 2 and len(rt.removed_images) == 2
    assert set(rt.removed_images) < {"sha256:a", "sha256:b", "sha256:c"}


async def test_images_kept_below_high_threshold_and_while_younger_than_minimum_age(tmp_path: Path) -> None:
    capacity = _capacity(tmp_path)
    rt = GcCRI(mountpoint=str(tmp_path), used_bytes=capacity * 84 // 100)
    rt.images = [cri.Image(id="sha256:a", size=capacity // 10)]
    gc = _collector(rt, image_minimum_age=0.0)
    assert (await gc.collect())[2] == 0 and rt.removed_images == []
    rt.used_bytes = capacity * 95 // 100
    young = _collector(rt)  # default minimum age 120 s: first seen now, too young
    assert (await young.collect())[2] == 0 and rt.removed_images == []
    assert (await gc.collect())[2] == 1 and rt.removed_images == ["sha256:a"]


async def test_images_go_least_recently_used_first_never_used_before_used(tmp_path: Path) -> None:
    capacity = _capacity(tmp_path)
    rt = GcCRI(mountpoint=str(tmp_path), used_bytes=capacity * 50 // 100)
    # Listed biggest first, so neither listing order nor size can explain the result.
    rt.images = [
        cri.Image(id="sha256:recent", repo_tags=["recent:1"], size=capacity * 6 // 100),
        cri.Image(id="sha256:older", repo_tags=["older:1"], size=capacity * 5 // 100),
        cri.Image(id="sha256:never", size=capacity * 4 // 100),
    ]
    gc = _collector(rt, image_minimum_age=0.0)

    def running(image: str) -> None:
        c = _container(image, "u1", "app", 1, cri.CONTAINER_RUNNING)
        c.image.image = image
        rt.containers = [c]

    running("older:1")  # below the threshold: nothing removed, but usage is noted
    assert (await gc.collect())[2] == 0
    running("recent:1")
    assert (await gc.collect())[2] == 0
    rt.containers = []
    rt.used_bytes = capacity * 88 // 100  # 88 - 4 = 84 > 80: a second image must go, not a third
    assert (await gc.collect())[2] == 2
    assert rt.removed_images == ["sha256:never", "sha256:older"]
