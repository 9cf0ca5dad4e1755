"""Garbage collection within limits: dead containers beyond `max_dead_per_container` per
(pod, container name) (the newest dead one stays for `logs --previous`), dead sandboxes that
hold no container and are not their pod's newest, and, when the image filesystem is fuller
than the high threshold, unused images until it is below the low one: least recently used
first, never-used ones first of all, oldest detected first (as Kubernetes' image GC; usage is
noted on every pass, so the order survives threshold crossings). In-use and pinned images are
never removed."""

from __future__ import annotations

import os
import time
from collections import defaultdict

from pinnace.cri.v1 import api_pb2 as cri
from services.kubelet import labels as keys
from services.kubelet.config import KubeletConfig
from services.kubelet.cri_client import CRI, CRIError
from services.machinery.logs import get_logger

log = get_logger(__name__)


class GarbageCollector:
    def __init__(self, config: KubeletConfig, runtime: CRI) -> None:
        self.config = config
        self.runtime = runtime
        self._first_seen: dict[str, float] = {}
        self._last_used: dict[str, float] = {}

    async def collect(self) -> tuple[int, int, int]:
        containers = await self.runtime.list_containers({keys.MANAGED_BY: "true"})
        sandboxes = await self.runtime.list_sandboxes({keys.MANAGED_BY: "true"})
        removed_containers = await self._containers(containers, sandboxes)
        removed_sandboxes = await self._sandboxes(containers, sandboxes)
        removed_images = await self._images()
        if removed_containers or removed_sandboxes or removed_images:
            log.info(
                "garbage collected",
                containers=removed_containers,
                sandboxes=removed_sandboxes,
                images=removed_images,
            )
        return removed_containers, removed_sandboxes, removed_images

    async def _containers(self, containers: list[cri.Container], sandboxes: list[cri.PodSandbox]) -> int:
        groups: dict[tuple[str, str], list[cri.Container]] = defaultdict(list)
        for c in containers:
            groups[
                (c.labels.get(keys.POD_UID, ""), c.labels.get(keys.CONTAINER_NAME, c.metadata.name))
            ].append(c)
        keep = max(1, self.config.max_dead_per_container)
        removed = 0
        for items in groups.values():
            dead = sorted(
                (c for c in items if c.state == cri.CONTAINER_EXITED),
                key=lambda c: c.created_at,
                reverse=True,
            )
            for c in dead[keep:]:
                try:
                    await self.runtime.remove_container(c.id)
                    removed += 1
                except CRIError as exc:
                    log.info("container removal failed", id=c.id[:12], error=str(exc))
        return removed

    async def _sandboxes(self, containers: list[cri.Container], sandboxes: list[cri.PodSandbox]) -> int:
        used = {c.pod_sandbox_id for c in containers}
        newest: dict[str, str] = {}
        for sb in sorted(sandboxes, key=lambda s: s.created_at):
            newest[sb.labels.get(keys.POD_UID, "")] = sb.id
        removed = 0
        for sb in sandboxes:
            if (
                sb.state == cri.SANDBOX_READY
                or sb.id in used
                or newest.get(sb.labels.get(keys.POD_UID, "")) == sb.id
            ):
                continue
            try:
                await self.runtime.remove_sandbox(sb.id)
                removed += 1
            except CRIError as exc:
                log.info("sandbox removal failed", id=sb.id[:12], error=str(exc))
        return removed

    async def _images(self) -> int:
        try:
            fs = await self.runtime.call("ImageFsInfo", cri.ImageFsInfoRequest())
        except CRIError:
            return 0
        filesystems = list(fs.image_filesystems)
        if not filesystems:
            return 0
        usage = filesystems[0]
        used = usage.used_bytes.value
        containers = await self.runtime.list_containers()
        in_use = {c.image_ref for c in containers} | {c.image.image for c in containers}
        images = list((await self.runtime.call("ListImages", cri.ListImagesRequest())).images)
        now = time.time()
        self._note_usage(images, in_use, now)
        capacity = self._capacity(usage.fs_id.mountpoint)
        if not capacity or used * 100 < capacity * self.config.image_gc_high_threshold_percent:
            return 0
        target = capacity * self.config.image_gc_low_threshold_percent // 100
        removed = 0
        for image in sorted(images, key=lambda i: (self._last_used.get(i.id, 0.0), self._first_seen[i.id])):
            if used <= target:
                break
            names = {image.id, *image.repo_tags, *image.repo_digests}
            if (
                image.pinned
                or names & in_use
                or now - self._first_seen[image.id] < self.config.image_minimum_age
            ):
                continue
            try:
                await self.runtime.call(
                    "RemoveImage", cri.RemoveImageRequest(image=cri.ImageSpec(image=image.id))
                )
            except CRIError as exc:
                log.info("image removal failed", image=image.id[:19], error=str(exc))
                continue
            used -= image.size
            removed += 1
        return removed

    def _note_usage(self, images: list[cri.Image], in_use: set[str], now: float) -> None:
        """First detection and last use per image id; records of vanished images go."""
        listed = {image.id for image in images}
        for records in (self._first_seen, self._last_used):
            for gone in set(records) - listed:
                del records[gone]
        for image in images:
            self._first_seen.setdefault(image.id, now)
            if {image.id, *image.repo_tags, *image.repo_digests} & in_use:
                self._last_used[image.id] = now

    @staticmethod
    def _capacity(mountpoint: str) -> int:
        try:
            st = os.statvfs(mountpoint or "/")
        except OSError:
            return 0
        return st.f_blocks * st.f_frsize
