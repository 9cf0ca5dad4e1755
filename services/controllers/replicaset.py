"""ReplicaSet and ReplicationController: keep exactly `replicas` active pods that match the
selector (set-based for ReplicaSets, equality for RCs; one implementation, two adapters).

- Expectations: after creating or deleting pods, the next sync waits until the informer has
  seen them, so a slow watch never causes a second batch.
- Ownership (controller.PodControllerRefManager): matching orphans are adopted, owned pods
  whose labels stop matching are released (their controller ref removed), and the released
  pod no longer counts, so a replacement is created.
- Scale down deletes the least valuable pods first (unscheduled, pending, not ready, newest).
- Creations go out in slow-start batches (1, 2, 4...) so a template the apiserver refuses
  fails once rather than `replicas` times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TypeVar

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.errors import APIStatusError, ConflictError, NotFoundError
from services.client.events import NORMAL, WARNING
from services.controllers.base import Controller, ControllerContext, object_key, split_key
from services.controllers.expectations import Expectations
from services.controllers.podutil import (
    OWNERSHIP_INDEXERS,
    claim_candidates,
    controller_ref,
    is_active,
    is_available,
    is_ready,
    least_valuable,
    now_ts,
    owner_reference,
    pod_from_template,
    template_labels_match,
)
from services.machinery import labels
from services.machinery.kinds import REGISTRY

Workload = apps_pb2.ReplicaSet | core_pb2.ReplicationController
_Owned = TypeVar("_Owned", core_pb2.Pod, apps_pb2.ReplicaSet)


def selector_of(obj: Message) -> labels.Selector:
    if isinstance(obj, core_pb2.ReplicationController):
        return labels.from_set(obj.spec.selector) if obj.spec.selector else labels.NOTHING
    spec = obj.spec  # type: ignore[attr-defined]
    return labels.from_label_selector(spec.selector if spec.HasField("selector") else None)


async def claim_pods(
    ctl: Controller,
    owner: Message,
    selector: labels.Selector,
    candidates: Iterable[_Owned],
) -> list[_Owned]:
    """The pods (or ReplicaSets) an owner controls after adopting matching orphans and releasing owned pods
    that no longer match (controller.ClaimPods)."""
    meta = owner.metadata  # type: ignore[attr-defined]
    deleting = meta.HasField("deletion_timestamp")
    claimed: list[_Owned] = []
    for pod in candidates:
        ref = controller_ref(pod)
        matches = selector.matches(pod.metadata.labels)
        if ref is not None:
            if ref.uid != meta.uid:
                continue
            if matches:
                claimed.append(pod)
            elif pod.metadata.deletion_timestamp.seconds == 0:
                await _release(ctl, owner, pod)
            continue
        if not matches or deleting or pod.metadata.HasField("deletion_timestamp"):
            continue
        if await _adopt(ctl, owner, pod):
            adopted = type(pod)()
            adopted.CopyFrom(pod)
            adopted.metadata.owner_references.append(owner_reference(owner))
            claimed.append(adopted)
    return claimed


async def _adopt(ctl: Controller, owner: Message, pod: _Owned) -> bool:
    info = REGISTRY.by_message(owner)
    meta = owner.metadata  # type: ignore[attr-defined]
    # A quorum read: never adopt for an owner that is being deleted (RecheckDeletionTimestamp).
    fresh = await ctl.client.get(info, meta.name, meta.namespace)
    if fresh.metadata.uid != meta.uid or fresh.metadata.HasField("deletion_timestamp"):  # type: ignore[attr-defined]
        return False
    # Optimistic concurrency on the cached pod: if anyone changed it (another controller
    # adopting it), the update conflicts and the next sync looks again.
    adopted = type(pod)()
    adopted.CopyFrom(pod)
    adopted.metadata.owner_references.append(owner_reference(owner))
    try:
        await ctl.client.update(adopted)
    except (NotFoundError, ConflictError):
        return False
    return True


async def _release(ctl: Controller, owner: Message, pod: _Owned) -> None:
    uid = owner.metadata.uid  # type: ignore[attr-defined]
    released = type(pod)()
    released.CopyFrom(pod)
    kept = [r for r in released.metadata.owner_references if r.uid != uid]
    del released.metadata.owner_references[:]
    released.metadata.owner_references.extend(kept)
    try:
        await ctl.client.update(released)
    except (NotFoundError, ConflictError):
        return
    ctl.recorder.event(owner, NORMAL, "Released", f"Released {pod.metadata.name}: labels no longer match")


async def write_status(ctl: Controller, obj: Message, status: Message, attempts: int = 3) -> Message:
    """Write a status computed from the cache; on a conflict the object changed under us (often
    only its spec or another status write), so re-read it and write the same status again, as
    the RS controller's updateReplicaSetStatus does."""
    current = obj
    for attempt in range(attempts):
        updated = type(current)()
        updated.CopyFrom(current)
        updated.status.CopyFrom(status)  # type: ignore[attr-defined]
        if hasattr(status, "observed_generation") and status.observed_generation:
            updated.status.observed_generation = min(  # type: ignore[attr-defined]
                status.observed_generation,
                updated.metadata.generation,  # type: ignore[attr-defined]
            )
        try:
            return await ctl.client.update_status(updated)
        except ConflictError:
            if attempt == attempts - 1:
                raise
            meta = obj.metadata  # type: ignore[attr-defined]
            current = await ctl.client.get(REGISTRY.by_message(obj), meta.name, meta.namespace)
    raise AssertionError("unreachable")


class ReplicaSetController(Controller):
    """Works for both kinds; `kind` picks the resource."""

    name = "replicaset"
    resource = "replicasets"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.owners = self.informer(self.resource)
        self.pods = self.informer("pods", OWNERSHIP_INDEXERS)
        self.kind = REGISTRY.by_name(self.resource).kind
        self.owners.add_handlers(
            on_add=self.enqueue_obj,
            on_update=lambda _o, n: self.enqueue_obj(n),
            on_delete=self._owner_deleted,
        )
        self.pods.add_handlers(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
        )

    # ------------------------------------------------------------------ events

    def _owner_deleted(self, obj: Message) -> None:
        self.expectations.forget(object_key(obj))
        self.enqueue_obj(obj)

    def _owner_key(self, pod: core_pb2.Pod) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.kind != self.kind:
            return None
        key = f"{pod.metadata.namespace}/{ref.name}"
        owner = self.owners.store.get(key)
        if owner is None or owner.metadata.uid != ref.uid:  # type: ignore[attr-defined]
            return None
        return key

    def _matching_owners(self, pod: core_pb2.Pod) -> list[str]:
        keys = []
        for owner in self.owners.store.by_index("namespace", pod.metadata.namespace):
            try:
                if selector_of(owner).matches(pod.metadata.labels):
                    keys.append(object_key(owner))
            except labels.SelectorError:
                continue
        return keys

    def _pod_added(self, pod: Message) -> None:
        assert isinstance(pod, core_pb2.Pod)
        if pod.metadata.HasField("deletion_timestamp"):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
        elif controller_ref(pod) is None:
            for owner in self._matching_owners(pod):
                self.enqueue(owner)

    def _pod_updated(self, old: Message, new: Message) -> None:
        assert isinstance(old, core_pb2.Pod) and isinstance(new, core_pb2.Pod)
        if old.metadata.resource_version == new.metadata.resource_version and old is not new:
            return
        if new.metadata.HasField("deletion_timestamp") and not old.metadata.HasField("deletion_timestamp"):
            # Graceful deletion started: count it as observed now (as the RS controller does).
            self._pod_deleted(new)
            return
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        if old_key is not None and old_key != new_key:
            self.enqueue(old_key)
        if new_key is not None:
            self.enqueue(new_key)
            owner = self.owners.store.get(new_key)
            min_ready = owner.spec.min_ready_seconds if owner is not None else 0  # type: ignore[attr-defined]
            if min_ready and not is_ready(old) and is_ready(new):
                self.enqueue_after(new_key, min_ready + 0.1)
        elif controller_ref(new) is None:
            for match in self._matching_owners(new):
                self.enqueue(match)

    def _pod_deleted(self, pod: Message) -> None:
        assert isinstance(pod, core_pb2.Pod)
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))
            self.enqueue(key)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        owner = self.owners.store.get(key)
        if owner is None:
            self.expectations.forget(key)
            return
        _namespace, _ = split_key(key)
        selector = selector_of(owner)
        candidates = [p for p in claim_candidates(self.pods.store, owner) if isinstance(p, core_pb2.Pod)]
        needs_sync = self.expectations.satisfied(key) and not owner.metadata.HasField("deletion_timestamp")  # type: ignore[attr-defined]
        claimed = await claim_pods(self, owner, selector, candidates)
        active = [p for p in claimed if is_active(p)]
        error: Exception | None = None
        if needs_sync:
            try:
                await self.manage_replicas(key, owner, active)
            except APIStatusError as exc:
                error = exc
        await self.update_status(owner, active, error)
        if error is not None:
            raise error

    async def manage_replicas(self, key: str, owner: Message, active: list[core_pb2.Pod]) -> None:
        spec = owner.spec  # type: ignore[attr-defined]
        diff = len(active) - spec.replicas
        if diff < 0:
            count = min(-diff, self.settings.burst_replicas)
            self.expectations.expect_creations(key, count)
            created = await self._create_pods(key, owner, count)
            if created < count:
                raise RuntimeError(f"created {created} of {count} pods")
        elif diff > 0:
            victims = least_valuable(active, min(diff, self.settings.burst_replicas))
            self.expectations.expect_deletions(key, [object_key(p) for p in victims])
            results = await asyncio.gather(
                *(self._delete_pod(key, owner, p) for p in victims), return_exceptions=True
            )
            for result in results:
                if isinstance(result, Exception):
                    raise result

    async def _create_pods(self, key: str, owner: Message, count: int) -> int:
        """Slow start: batches of 1, 2, 4... stop at the first failing batch."""
        template = owner.spec.template  # type: ignore[attr-defined]
        created, batch = 0, 1
        while created < count:
            size = min(batch, count - created)
            results = await asyncio.gather(
                *(self.client.create(pod_from_template(template, owner)) for _ in range(size)),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, Exception)]
            created += size - len(failures)
            if failures:
                skipped = count - created
                for _ in range(skipped):
                    self.expectations.creation_observed(key)
                self.recorder.event(owner, WARNING, "FailedCreate", f"Error creating: {failures[0]}")
                return created
            batch *= 2
        if created:
            self.recorder.event(owner, NORMAL, "SuccessfulCreate", f"Created {created} pod(s)")
        return created

    async def _delete_pod(self, key: str, owner: Message, pod: core_pb2.Pod) -> None:
        try:
            await self.client.delete("pods", pod.metadata.name, pod.metadata.namespace, uid=pod.metadata.uid)
        except NotFoundError:
            self.expectations.deletion_observed(key, object_key(pod))
            return
        except APIStatusError:
            self.expectations.deletion_observed(key, object_key(pod))
            raise
        self.recorder.event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")

    async def update_status(
        self, owner: Message, active: list[core_pb2.Pod], error: Exception | None
    ) -> None:
        spec = owner.spec  # type: ignore[attr-defined]
        template_labels = dict(spec.template.metadata.labels)
        now = time.time()
        status = type(owner.status)()  # type: ignore[attr-defined]
        status.replicas = len(active)
        status.fully_labeled_replicas = sum(1 for p in active if template_labels_match(template_labels, p))
        status.ready_replicas = sum(1 for p in active if is_ready(p))
        status.available_replicas = sum(1 for p in active if is_available(p, spec.min_ready_seconds, now))
        status.observed_generation = owner.metadata.generation  # type: ignore[attr-defined]
        old_failure = next((c for c in owner.status.conditions if c.type == "ReplicaFailure"), None)  # type: ignore[attr-defined]
        if error is not None:
            condition = status.conditions.add(type="ReplicaFailure", status="True", reason="FailedCreate")
            condition.message = str(error)[:1000]
            if old_failure is not None and old_failure.message == condition.message:
                condition.last_transition_time.CopyFrom(old_failure.last_transition_time)
            else:
                condition.last_transition_time.CopyFrom(now_ts())
        if status != owner.status:  # type: ignore[attr-defined]
            try:
                await write_status(self, owner, status)
            except NotFoundError:
                return
        if spec.min_ready_seconds and status.ready_replicas > status.available_replicas:
            self.enqueue_after(object_key(owner), spec.min_ready_seconds)


class ReplicationControllerController(ReplicaSetController):
    name = "replicationcontroller"
    resource = "replicationcontrollers"
