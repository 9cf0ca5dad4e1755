"""The PersistentVolume binder: binds each PersistentVolumeClaim to the smallest Available
PersistentVolume that satisfies it (storageClassName, access modes, capacity, volumeMode,
label selector), provisions a hostPath volume when a claim's StorageClass names the
`pinnace.io/host-path` provisioner and nothing fits, and applies the reclaim policy when a
bound claim goes away (Retain: Released, kept for an administrator; Delete: the PV object is
deleted; its hostPath directory is the node's to clean up).

Binding is the same two-sided protocol as Kubernetes': the volume's claimRef is written first
(at its resourceVersion, so two claims cannot take one volume), then the claim's volumeName;
a crash between the two is finished by the next sync."""

from __future__ import annotations

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from pinnace.api.storage.v1 import storage_pb2
from services.client.errors import AlreadyExistsError, ConflictError, NotFoundError
from services.client.events import NORMAL, WARNING
from services.controllers.base import Controller, ControllerContext
from services.machinery import labels
from services.machinery.quantity import parse_quantity

PROVISIONERS = ("pinnace.io/host-path", "kubernetes.io/host-path")
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
HOST_PATH_ROOT = "/var/lib/pinnace/volumes"


def _capacity(pv: core_pb2.PersistentVolume) -> int:
    return parse_quantity(pv.spec.capacity.get("storage", "0")).int_value()


def _request(claim: core_pb2.PersistentVolumeClaim) -> int:
    return parse_quantity(claim.spec.resources.requests.get("storage", "0")).int_value()


class PersistentVolumeController(Controller):
    name = "persistentvolume-binder"
    default_workers = 1  # binding is serial: one claim at a time picks among free volumes

    def __init__(self, ctx: ControllerContext, host_path_root: str = HOST_PATH_ROOT) -> None:
        super().__init__(ctx)
        self.host_path_root = host_path_root
        self.volumes = self.informer("persistentvolumes")
        self.claims = self.informer("persistentvolumeclaims")
        self.classes = self.informer("storageclasses")
        self.volumes.add_handlers(
            on_add=self._volume_event,
            on_update=lambda _o, n: self._volume_event(n),
            on_delete=self._volume_event,
        )
        self.claims.add_handlers(
            on_add=self._claim_event,
            on_update=lambda _o, n: self._claim_event(n),
            on_delete=self._claim_deleted,
        )

    def _volume_event(self, pv: Message) -> None:
        self.enqueue(("volume", pv.metadata.name))  # type: ignore[attr-defined]
        # A volume that became free may satisfy a pending claim.
        for claim in self.claims.store.list():
            if claim.status.phase == "Pending":  # type: ignore[attr-defined]
                self.enqueue(("claim", f"{claim.metadata.namespace}/{claim.metadata.name}"))  # type: ignore[attr-defined]

    def _claim_event(self, claim: Message) -> None:
        self.enqueue(("claim", f"{claim.metadata.namespace}/{claim.metadata.name}"))  # type: ignore[attr-defined]

    def _claim_deleted(self, claim: Message) -> None:
        name = claim.spec.volume_name  # type: ignore[attr-defined]
        if name:
            self.enqueue(("volume", name))

    async def sync(self, key: tuple[str, str]) -> None:
        kind, name = key
        if kind == "claim":
            await self._sync_claim(name)
        else:
            await self._sync_volume(name)

    # ------------------------------------------------------------------ claims

    def _class_of(self, claim: core_pb2.PersistentVolumeClaim) -> str:
        if claim.spec.HasField("storage_class_name"):
            return claim.spec.storage_class_name
        for sc in self.classes.store.list():
            if sc.metadata.annotations.get(DEFAULT_CLASS_ANNOTATION) == "true":  # type: ignore[attr-defined]
                return str(sc.metadata.name)  # type: ignore[attr-defined]
        return ""

    def _fits(self, claim: core_pb2.PersistentVolumeClaim, pv: core_pb2.PersistentVolume, klass: str) -> bool:
        ref = pv.spec.claim_ref
        if ref.name and not (ref.namespace == claim.metadata.namespace and ref.name == claim.metadata.name):
            return False
        if ref.uid and ref.uid != claim.metadata.uid:
            return False
        if pv.status.phase not in ("Available", "Pending", "") and not ref.name:
            return False
        if pv.metadata.HasField("deletion_timestamp"):
            return False
        if pv.spec.storage_class_name != klass:
            return False
        if not set(claim.spec.access_modes) <= set(pv.spec.access_modes):
            return False
        if (pv.spec.volume_mode or "Filesystem") != (claim.spec.volume_mode or "Filesystem"):
            return False
        if _capacity(pv) < _request(claim):
            return False
        if claim.spec.HasField("selector"):
            try:
                if not labels.from_label_selector(claim.spec.selector).matches(pv.metadata.labels):
                    return False
            except labels.SelectorError:
                return False
        return True

    async def _sync_claim(self, key: str) -> None:
        cached = self.claims.store.get(key)
        if not isinstance(cached, core_pb2.PersistentVolumeClaim) or cached.metadata.HasField(
            "deletion_timestamp"
        ):
            return
        claim = core_pb2.PersistentVolumeClaim()
        claim.CopyFrom(cached)
        if claim.spec.volume_name:
            pv = self.volumes.store.get(claim.spec.volume_name)
            if not isinstance(pv, core_pb2.PersistentVolume):
                if claim.status.phase == "Bound":
                    await self._claim_status(claim, "Lost", None)
                return
            if pv.spec.claim_ref.uid and pv.spec.claim_ref.uid != claim.metadata.uid:
                return  # the volume belongs to someone else: the claim waits
            if not pv.spec.claim_ref.uid:
                pv = await self._bind_volume(pv, claim)
            await self._claim_status(claim, "Bound", pv)
            return
        klass = self._class_of(claim)
        candidates = [
            v
            for v in self.volumes.store.list()
            if isinstance(v, core_pb2.PersistentVolume) and self._fits(claim, v, klass)
        ]
        if candidates:
            # Prefer a volume pre-bound to this claim, then the smallest that fits.
            candidates.sort(key=lambda v: (v.spec.claim_ref.name == "", _capacity(v), v.metadata.name))
            pv = await self._bind_volume(candidates[0], claim)
            claim.spec.volume_name = pv.metadata.name
            claim.metadata.annotations[BIND_COMPLETED] = "yes"
            claim = await self.client.update(claim)
            await self._claim_status(claim, "Bound", pv)
            self.recorder.event(claim, NORMAL, "Bound", f"bound to volume {pv.metadata.name}")
            return
        storage_class = self.classes.store.get(klass) if klass else None
        if isinstance(storage_class, storage_pb2.StorageClass) and storage_class.provisioner in PROVISIONERS:
            await self._provision(claim, storage_class)
            return
        if claim.status.phase != "Pending":
            await self._claim_status(claim, "Pending", None)
        message = (
            f'storageclass.storage.k8s.io "{klass}" not found or not provisionable'
            if klass
            else "no persistent volumes available for this claim and no storage class is set"
        )
        self.recorder.event(claim, WARNING if klass else NORMAL, "FailedBinding", message)

    async def _bind_volume(
        self, cached: core_pb2.PersistentVolume, claim: core_pb2.PersistentVolumeClaim
    ) -> core_pb2.PersistentVolume:
        pv = core_pb2.PersistentVolume()
        pv.CopyFrom(cached)
        ref = pv.spec.claim_ref
        ref.kind, ref.api_version = "PersistentVolumeClaim", "v1"
        ref.namespace, ref.name, ref.uid = claim.metadata.namespace, claim.metadata.name, claim.metadata.uid
        ref.resource_version = claim.metadata.resource_version
        pv.metadata.annotations[BIND_COMPLETED] = "yes"
        pv = await self.client.update(pv)  # conflicts if another claim got there first
        pv.status.phase = "Bound"
        return await self.client.update_status(pv)

    async def _claim_status(
        self, claim: core_pb2.PersistentVolumeClaim, phase: str, pv: core_pb2.PersistentVolume | None
    ) -> None:
        status = core_pb2.PersistentVolumeClaimStatus(phase=phase)
        if pv is not None and phase == "Bound":
            status.access_modes.extend(pv.spec.access_modes)
            status.capacity.update(pv.spec.capacity)
        if status == claim.status:
            return
        claim.status.CopyFrom(status)
        try:
            await self.client.update_status(claim)
        except NotFoundError:
            return

    async def _provision(
        self, claim: core_pb2.PersistentVolumeClaim, storage_class: storage_pb2.StorageClass
    ) -> None:
        pv = core_pb2.PersistentVolume()
        pv.metadata.name = f"pvc-{claim.metadata.uid}"
        pv.metadata.annotations[PROVISIONED_BY] = storage_class.provisioner
        pv.spec.capacity["storage"] = claim.spec.resources.requests.get("storage", "1Gi")
        pv.spec.access_modes.extend(claim.spec.access_modes or ["ReadWriteOnce"])
        pv.spec.storage_class_name = storage_class.metadata.name
        pv.spec.persistent_volume_reclaim_policy = (
            storage_class.reclaim_policy if storage_class.HasField("reclaim_policy") else "Delete"
        )
        pv.spec.host_path.path = (
            f"{self.host_path_root}/{claim.metadata.namespace}-{claim.metadata.name}-{claim.metadata.uid}"
        )
        pv.spec.host_path.type = "DirectoryOrCreate"
        if claim.spec.HasField("volume_mode"):
            pv.spec.volume_mode = claim.spec.volume_mode
        ref = pv.spec.claim_ref
        ref.kind, ref.api_version = "PersistentVolumeClaim", "v1"
        ref.namespace, ref.name, ref.uid = claim.metadata.namespace, claim.metadata.name, claim.metadata.uid
        try:
            await self.client.create(pv)
        except AlreadyExistsError:
            return
        self.recorder.event(
            claim,
            NORMAL,
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {pv.metadata.name} using {storage_class.provisioner}",
        )

    # ------------------------------------------------------------------ volumes

    async def _sync_volume(self, name: str) -> None:
        cached = self.volumes.store.get(name)
        if not isinstance(cached, core_pb2.PersistentVolume):
            return
        ref = cached.spec.claim_ref
        if not ref.name:
            if cached.status.phase not in ("Available",):
                await self._volume_phase(cached, "Available")
            return
        claim = self.claims.store.get(f"{ref.namespace}/{ref.name}")
        if claim is not None and (not ref.uid or claim.metadata.uid == ref.uid):  # type: ignore[attr-defined]
            if claim.spec.volume_name == name and cached.status.phase != "Bound":  # type: ignore[attr-defined]
                await self._volume_phase(cached, "Bound")
            elif not claim.spec.volume_name:  # type: ignore[attr-defined]
                self.enqueue(("claim", f"{ref.namespace}/{ref.name}"))
            return
        if not ref.uid:
            return  # pre-bound to a claim that does not exist yet
        # The claim is gone (or replaced): reclaim.
        try:
            fresh: Message | None = await self.client.get("persistentvolumeclaims", ref.name, ref.namespace)
        except NotFoundError:
            fresh = None
        if fresh is not None and fresh.metadata.uid == ref.uid:  # type: ignore[attr-defined]
            return  # our cache is behind
        policy = cached.spec.persistent_volume_reclaim_policy or "Retain"
        if policy == "Delete":
            try:
                await self.client.delete("persistentvolumes", name, uid=cached.metadata.uid)
            except (NotFoundError, ConflictError):
                return
            self.recorder.event(cached, NORMAL, "VolumeDelete", f"deleted volume {name}: its claim is gone")
            return
        if cached.status.phase != "Released":
            await self._volume_phase(cached, "Released")
            if policy not in ("Retain",):
                self.recorder.event(
                    cached,
                    WARNING,
                    "VolumeUnsupportedReclaimPolicy",
                    f"reclaim policy {policy} is not supported",
                )

    async def _volume_phase(self, cached: core_pb2.PersistentVolume, phase: str) -> None:
        pv = core_pb2.PersistentVolume()
        pv.CopyFrom(cached)
        pv.status.phase = phase
        try:
            await self.client.update_status(pv)
        except NotFoundError:
            return
