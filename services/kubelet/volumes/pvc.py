"""persistentVolumeClaim: the claim must be Bound; its PersistentVolume must be a hostPath or
local volume (the kinds a single node can serve), whose path is bind-mounted."""

from __future__ import annotations

from pathlib import Path

from pinnace.api.core.v1 import core_pb2
from services.kubelet.objects import ObjectSource
from services.kubelet.volumes import hostpath
from services.kubelet.volumes.errors import VolumeError


async def setup(
    namespace: str, source: core_pb2.PersistentVolumeClaimVolumeSource, objects: ObjectSource
) -> Path:
    claim = await objects.claim(namespace, source.claim_name)
    if claim is None:
        raise VolumeError(f'persistentvolumeclaim "{source.claim_name}" not found')
    if claim.status.phase != "Bound" or not claim.spec.volume_name:
        raise VolumeError(f'persistentvolumeclaim "{source.claim_name}" is not bound')
    volume = await objects.volume(claim.spec.volume_name)
    if volume is None:
        raise VolumeError(f'persistentvolume "{claim.spec.volume_name}" not found')
    if volume.spec.HasField("host_path"):
        return hostpath.setup(volume.spec.host_path)
    if volume.spec.HasField("local"):
        path = Path(volume.spec.local.path)
        if not path.exists():
            raise VolumeError(f'local volume path "{path}" does not exist')
        return path
    raise VolumeError(f'persistentvolume "{volume.metadata.name}" is neither hostPath nor local')
