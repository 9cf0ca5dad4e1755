"""Sets up every volume of a pod before its containers start (and refreshes the projected
ones on every sync, which is how secret/configMap updates and renewed service-account tokens
reach running pods), turns a container's volumeMounts into CRI mounts, and removes the pod's
directory (and forgets its tokens) when it is gone."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri
from services.kubelet.objects import ObjectSource
from services.kubelet.tokens import TokenManager
from services.kubelet.volumes import emptydir, hostpath, projected, pvc
from services.kubelet.volumes.errors import VolumeError

_PROPAGATION = {
    "": cri.PROPAGATION_PRIVATE,
    "None": cri.PROPAGATION_PRIVATE,
    "HostToContainer": cri.PROPAGATION_HOST_TO_CONTAINER,
    "Bidirectional": cri.PROPAGATION_BIDIRECTIONAL,
}


@dataclass(frozen=True)
class Mounted:
    path: Path
    # secret, configMap, downwardAPI and projected volumes are always read-only in containers.
    read_only: bool = False


class VolumeManager:
    def __init__(
        self,
        pods_dir: Path,
        objects: ObjectSource,
        allocatable: Callable[[], Mapping[str, str]] | None = None,
        tokens: TokenManager | None = None,
        memory_backed: bool = True,
    ) -> None:
        """`memory_backed`: secret, downwardAPI and projected volumes live on a tmpfs of their
        own, as in Kubernetes, so secrets never reach the node's disk. Only unit tests, which
        run without root and cannot mount, turn it off."""
        self.pods_dir = pods_dir
        self.memory_backed = memory_backed
        self.objects = objects
        self.allocatable = allocatable or dict
        self.tokens = tokens if tokens is not None else TokenManager(objects.token)

    def pod_dir(self, uid: str) -> Path:
        return self.pods_dir / uid

    def volume_dir(self, uid: str, plugin: str, name: str) -> Path:
        return self.pod_dir(uid) / "volumes" / plugin / name

    async def _memory_dir(self, uid: str, plugin: str, name: str) -> Path:
        """The directory of a volume that holds secrets: a tmpfs (mode 0755) when memory-backed."""
        path = self.volume_dir(uid, plugin, name)
        if self.memory_backed:
            await emptydir.mount_tmpfs(path, "mode=0755")
        return path

    async def setup(self, pod: core_pb2.Pod, *, pod_ip: str = "", host_ip: str = "") -> dict[str, Mounted]:
        """Every volume of the pod, or VolumeError naming the first one that failed."""
        uid, ns = pod.metadata.uid, pod.metadata.namespace
        mounted: dict[str, Mounted] = {}
        for volume in pod.spec.volumes:
            try:
                mounted[volume.name] = await self._setup_one(pod, volume, uid, ns, pod_ip, host_ip)
            except VolumeError as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{volume.name}": {exc}') from None
            except OSError as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{volume.name}": {exc}') from None
        return mounted

    async def _setup_one(
        self, pod: core_pb2.Pod, volume: core_pb2.Volume, uid: str, ns: str, pod_ip: str, host_ip: str
    ) -> Mounted:
        if volume.HasField("empty_dir"):
            path = self.volume_dir(uid, emptydir.PLUGIN, volume.name)
            await emptydir.setup(path, volume.empty_dir)
            return Mounted(path)
        if volume.HasField("host_path"):
            return Mounted(hostpath.setup(volume.host_path))
        if volume.HasField("secret"):
            path = await self._memory_dir(uid, projected.SECRET_PLUGIN, volume.name)
            await projected.setup_secret(path, ns, volume.secret, self.objects)
            return Mounted(path, read_only=True)
        if volume.HasField("config_map"):
            path = self.volume_dir(uid, projected.CONFIGMAP_PLUGIN, volume.name)
            await projected.setup_config_map(path, ns, volume.config_map, self.objects)
            return Mounted(path, read_only=True)
        if volume.HasField("downward_api"):
            path = await self._memory_dir(uid, projected.DOWNWARD_PLUGIN, volume.name)
            projected.setup_downward(
                path, pod, volume.downward_api, pod_ip=pod_ip, host_ip=host_ip, allocatable=self.allocatable()
            )
            return Mounted(path, read_only=True)
        if volume.HasField("projected"):
            path = await self._memory_dir(uid, projected.PROJECTED_PLUGIN, volume.name)
            await projected.setup_projected(
                path,
                pod,
                volume.projected,
                self.objects,
                self.tokens,
                pod_ip=pod_ip,
                host_ip=host_ip,
                allocatable=self.allocatable(),
            )
            return Mounted(path, read_only=True)
        if volume.HasField("persistent_volume_claim"):
            path = await pvc.setup(ns, volume.persistent_volume_claim, self.objects)
            return Mounted(path, read_only=volume.persistent_volume_claim.read_only)
        raise VolumeError("volume type not supported by this kubelet")

    def mounts(self, container: core_pb2.Container, mounted: Mapping[str, Mounted]) -> list[cri.Mount]:
        result: list[cri.Mount] = []
        for mount in container.volume_mounts:
            volume = mounted.get(mount.name)
            if volume is None:
                raise VolumeError(f'volume "{mount.name}" is not set up')
            host = volume.path
            if mount.sub_path:
                sub = Path(mount.sub_path)
                if sub.is_absolute() or ".." in sub.parts:
                    raise VolumeError(f'subPath "{mount.sub_path}" must be relative without ".."')
                host = host / sub
                if not host.exists() and not volume.read_only:
                    host.mkdir(parents=True, exist_ok=True)
            propagation = mount.mount_propagation if mount.HasField("mount_propagation") else ""
            result.append(
                cri.Mount(
                    container_path=mount.mount_path,
                    host_path=str(host),
                    readonly=mount.read_only or volume.read_only,
                    propagation=_PROPAGATION.get(propagation, cri.PROPAGATION_PRIVATE),
                )
            )
        return result

    async def teardown(self, uid: str) -> None:
        """Unmount the tmpfs of every volume that has one and remove the pod's directory."""
        pod_dir = self.pod_dir(uid)
        volumes = pod_dir / "volumes"
        if volumes.is_dir():
            for plugin in volumes.iterdir():
                for path in plugin.iterdir() if plugin.is_dir() else ():
                    await emptydir.teardown(path)
        shutil.rmtree(pod_dir, ignore_errors=True)
        self.tokens.forget(uid)

    def known_pods(self) -> list[str]:
        if not self.pods_dir.is_dir():
            return []
        return [p.name for p in self.pods_dir.iterdir() if p.is_dir()]
