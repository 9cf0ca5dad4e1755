"""StatefulSets: pods with stable identities, name-0 .. name-(n-1), each with its own
PersistentVolumeClaims from volumeClaimTemplates (claim `<template>-<pod>`), kept when the pod
is deleted, recreated or scaled away, so a pod that comes back finds its data.

- OrderedReady creates pods one at a time in ordinal order, each once the previous one is
  Running and Ready, and scales down from the highest ordinal, one pod at a time; Parallel
  creates and deletes without waiting.
- Each pod gets hostname = its name and subdomain = spec.serviceName, so the headless
  service's Endpoints (and DNS) name it <pod>.<service>.
- Every template is a ControllerRevision (history.py); pods are labelled
  controller-revision-hash with the revision's name, and status.updateRevision /
  currentRevision name the revisions. RollingUpdate replaces pods of another revision in
  reverse ordinal order, one at a time, each after the others are Ready; ordinals below
  `partition` keep the current revision, and one recreated there (deleted, failed) gets the
  current revision's template, not the new one. OnDelete leaves replacement to the user.
  Revisions no pod uses are trimmed to revisionHistoryLimit.

Names are the identity, so a stale cache at worst gets AlreadyExists on a create; no
expectations are needed."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.errors import AlreadyExistsError, NotFoundError
from services.client.events import NORMAL
from services.controllers import history
from services.controllers.base import Controller, ControllerContext, object_key
from services.controllers.podutil import (
    OWNER_INDEX,
    OWNERSHIP_INDEXERS,
    controller_ref,
    is_available,
    is_ready,
    owned,
    pod_from_template,
)
from services.controllers.replicaset import write_status

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
REVISION_LABEL = history.REVISION_LABEL


def ordinal_of(sts_name: str, pod_name: str) -> int | None:
    prefix = f"{sts_name}-"
    if not pod_name.startswith(prefix):
        return None
    tail = pod_name[len(prefix) :]
    return int(tail) if tail.isdigit() else None


def claim_name(template: core_pb2.PersistentVolumeClaim, pod_name: str) -> str:
    return f"{template.metadata.name}-{pod_name}"


def running_and_ready(pod: core_pb2.Pod) -> bool:
    return pod.status.phase == "Running" and is_ready(pod) and not pod.metadata.HasField("deletion_timestamp")


@dataclass(frozen=True)
class Revisions:
    current: apps_pb2.ControllerRevision
    update: apps_pb2.ControllerRevision

    def for_ordinal(self, sts: apps_pb2.StatefulSet, ordinal: int) -> apps_pb2.ControllerRevision:
        """newVersionedStatefulSetPod: below a RollingUpdate partition a pod is (re)made at
        the current revision, everywhere else at the update revision."""
        strategy = sts.spec.update_strategy
        if strategy.type == "RollingUpdate" and ordinal < strategy.rolling_update.partition:
            return self.current
        return self.update


class StatefulSetController(Controller):
    name = "statefulset"
    default_workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.sets = self.informer("statefulsets")
        self.pods = self.informer("pods", OWNERSHIP_INDEXERS)
        self.claims = self.informer("persistentvolumeclaims")
        self.revisions = self.informer("controllerrevisions", OWNERSHIP_INDEXERS)
        self.revisions.add_handlers(on_delete=self._pod_event)
        self.sets.add_handlers(on_add=self.enqueue_obj, on_update=lambda _o, n: self.enqueue_obj(n))
        self.pods.add_handlers(
            on_add=self._pod_event, on_update=lambda _o, n: self._pod_event(n), on_delete=self._pod_event
        )

    def _pod_event(self, pod: Message) -> None:
        ref = controller_ref(pod)
        if ref is not None and ref.kind == "StatefulSet":
            self.enqueue(f"{pod.metadata.namespace}/{ref.name}")  # type: ignore[attr-defined]

    async def sync(self, key: str) -> None:
        cached = self.sets.store.get(key)
        if not isinstance(cached, apps_pb2.StatefulSet):
            return
        sts = apps_pb2.StatefulSet()
        sts.CopyFrom(cached)
        pods: dict[int, core_pb2.Pod] = {}
        for pod in owned(self.pods.store, sts):
            ref = controller_ref(pod)
            if not isinstance(pod, core_pb2.Pod) or ref is None or ref.uid != sts.metadata.uid:
                continue
            ordinal = ordinal_of(sts.metadata.name, pod.metadata.name)
            if ordinal is not None:
                pods[ordinal] = pod
        if sts.metadata.HasField("deletion_timestamp"):
            return
        revisions = history.owned_by(self.revisions.store.by_index(OWNER_INDEX, sts.metadata.uid), sts)
        update, collisions = await history.update_revision(
            self.client, sts, sts.spec.template, revisions, sts.status.collision_count
        )
        if collisions != sts.status.collision_count:
            sts.status.collision_count = collisions
        current = next((r for r in revisions if r.metadata.name == sts.status.current_revision), update)
        revs = Revisions(current, update)
        await self._converge(sts, pods, revs)
        await self._status(sts, pods, update.metadata.name)
        in_use = {p.metadata.labels.get(REVISION_LABEL, "") for p in pods.values()}
        keep = (current.metadata.name, update.metadata.name)
        await history.trim(self.client, revisions, keep, in_use, sts.spec.revision_history_limit)

    async def _converge(
        self, sts: apps_pb2.StatefulSet, pods: dict[int, core_pb2.Pod], revs: Revisions
    ) -> None:
        replicas = sts.spec.replicas
        ordered = sts.spec.pod_management_policy != "Parallel"
        for ordinal in range(replicas):
            pod = pods.get(ordinal)
            if pod is None:
                await self._create(sts, ordinal, revs.for_ordinal(sts, ordinal))
                if ordered:
                    return
                continue
            if pod.status.phase == "Failed" and not pod.metadata.HasField("deletion_timestamp"):
                await self._delete(sts, pod, "failed")
                if ordered:
                    return
                continue
            if ordered and not running_and_ready(pod):
                return  # wait: the next ordinal starts only after this one is Ready
        condemned = sorted((o for o in pods if o >= replicas), reverse=True)
        for ordinal in condemned:
            pod = pods[ordinal]
            if pod.metadata.HasField("deletion_timestamp"):
                if ordered:
                    return
                continue
            if ordered and not all(running_and_ready(p) for o, p in pods.items() if o < ordinal):
                return
            await self._delete(sts, pod, "scale down")
            if ordered:
                return
        if condemned:
            return
        await self._rolling_update(sts, pods, revs.update.metadata.name)

    async def _rolling_update(
        self, sts: apps_pb2.StatefulSet, pods: dict[int, core_pb2.Pod], revision: str
    ) -> None:
        strategy = sts.spec.update_strategy
        if strategy.type == "OnDelete":
            return
        partition = strategy.rolling_update.partition if strategy.rolling_update.HasField("partition") else 0
        if not all(running_and_ready(p) for p in pods.values()):
            return  # one at a time, each after the rest are Ready
        for ordinal in sorted(pods, reverse=True):
            if ordinal < partition:
                break
            pod = pods[ordinal]
            if pod.metadata.labels.get(REVISION_LABEL) != revision:
                await self._delete(sts, pod, "update")
                return

    async def _create(
        self, sts: apps_pb2.StatefulSet, ordinal: int, revision: apps_pb2.ControllerRevision
    ) -> None:
        name = f"{sts.metadata.name}-{ordinal}"
        await self._ensure_claims(sts, name)
        labels = {POD_NAME_LABEL: name, REVISION_LABEL: revision.metadata.name}
        pod = pod_from_template(revision.data.spec.template, sts, name=name, extra_labels=labels)
        pod.spec.hostname = name
        if sts.spec.service_name:
            pod.spec.subdomain = sts.spec.service_name
        for template in sts.spec.volume_claim_templates:
            volumes = [v for v in pod.spec.volumes if v.name != template.metadata.name]
            del pod.spec.volumes[:]
            pod.spec.volumes.extend(volumes)
            volume = pod.spec.volumes.add(name=template.metadata.name)
            volume.persistent_volume_claim.claim_name = claim_name(template, name)
        try:
            await self.client.create(pod)
        except AlreadyExistsError:
            return
        self.recorder.event(
            sts,
            NORMAL,
            "SuccessfulCreate",
            f"create Pod {name} in StatefulSet {sts.metadata.name} successful",
        )

    async def _ensure_claims(self, sts: apps_pb2.StatefulSet, pod_name: str) -> None:
        for template in sts.spec.volume_claim_templates:
            name = claim_name(template, pod_name)
            if self.claims.store.get(f"{sts.metadata.namespace}/{name}") is not None:
                continue
            claim = core_pb2.PersistentVolumeClaim()
            claim.CopyFrom(template)
            claim.ClearField("status")
            claim.metadata.Clear()
            claim.metadata.name = name
            claim.metadata.namespace = sts.metadata.namespace
            claim.metadata.labels.update(template.metadata.labels)
            claim.metadata.labels.update(sts.spec.selector.match_labels)
            try:
                await self.client.create(claim)
            except AlreadyExistsError:
                continue
            self.recorder.event(
                sts,
                NORMAL,
                "SuccessfulCreate",
                f"create Claim {name} for Pod {pod_name} in StatefulSet {sts.metadata.name} success",
            )

    async def _delete(self, sts: apps_pb2.StatefulSet, pod: core_pb2.Pod, why: str) -> None:
        try:
            await self.client.delete("pods", pod.metadata.name, pod.metadata.namespace, uid=pod.metadata.uid)
        except NotFoundError:
            return
        self.recorder.event(
            sts,
            NORMAL,
            "SuccessfulDelete",
            f"delete Pod {pod.metadata.name} in StatefulSet {sts.metadata.name} successful ({why})",
        )

    async def _status(self, sts: apps_pb2.StatefulSet, pods: dict[int, core_pb2.Pod], revision: str) -> None:
        live = [p for p in pods.values() if not p.metadata.HasField("deletion_timestamp")]
        status = apps_pb2.StatefulSetStatus()
        status.CopyFrom(sts.status)
        status.observed_generation = sts.metadata.generation
        status.replicas = len(live)
        status.ready_replicas = sum(1 for p in live if is_ready(p))
        status.available_replicas = sum(1 for p in live if is_available(p, sts.spec.min_ready_seconds))
        status.update_revision = revision
        current = status.current_revision or revision
        status.updated_replicas = sum(1 for p in live if p.metadata.labels.get(REVISION_LABEL) == revision)
        if (
            status.updated_replicas == sts.spec.replicas == status.ready_replicas
            and len(live) == sts.spec.replicas
        ):
            current = revision
        status.current_revision = current
        status.current_replicas = sum(1 for p in live if p.metadata.labels.get(REVISION_LABEL) == current)
        if status != sts.status:
            try:
                await write_status(self, sts, status)
            except NotFoundError:
                return
        if sts.spec.min_ready_seconds and status.ready_replicas > status.available_replicas:
            self.enqueue_after(object_key(sts), sts.spec.min_ready_seconds)
