"""Pod and ownership helpers the workload controllers share: readiness and availability,
controller references, the pods a template stamps out, and which pods to delete first."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.client.informer import IndexFunc
from services.machinery.kinds import REGISTRY


def now_ts() -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns() // 1000 * 1000)
    return stamp


def seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def is_terminal(pod: core_pb2.Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def is_active(pod: core_pb2.Pod) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted."""
    return not is_terminal(pod) and not pod.metadata.HasField("deletion_timestamp")


def ready_condition(pod: core_pb2.Pod) -> core_pb2.PodCondition | None:
    for condition in pod.status.conditions:
        if condition.type == "Ready":
            return condition
    return None


def is_ready(pod: core_pb2.Pod) -> bool:
    condition = ready_condition(pod)
    return condition is not None and condition.status == "True"


def is_available(pod: core_pb2.Pod, min_ready_seconds: int, now: float | None = None) -> bool:
    """Ready for at least minReadySeconds (podutil.IsPodAvailable)."""
    condition = ready_condition(pod)
    if condition is None or condition.status != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = seconds(condition.last_transition_time)
    return since + min_ready_seconds <= (now if now is not None else time.time())


def controller_ref(obj: Message) -> meta_pb2.OwnerReference | None:
    refs: list[meta_pb2.OwnerReference] = list(obj.metadata.owner_references)  # type: ignore[attr-defined]
    for ref in refs:
        if ref.HasField("controller") and ref.controller:
            return ref
    return None


OWNER_INDEX = "controller-uid"
ORPHAN_INDEX = "orphans"


def by_controller_uid(obj: Message) -> list[str]:
    """Index: objects by their controller's uid, so a sync reads only what its owner controls."""
    ref = controller_ref(obj)
    return [ref.uid] if ref is not None else []


def orphans_by_namespace(obj: Message) -> list[str]:
    """Index: objects without a controller, by namespace (the candidates for adoption)."""
    return [] if controller_ref(obj) is not None else [obj.metadata.namespace]  # type: ignore[attr-defined]


OWNERSHIP_INDEXERS: dict[str, IndexFunc] = {
    OWNER_INDEX: by_controller_uid,
    ORPHAN_INDEX: orphans_by_namespace,
}


def owned(store: Any, owner: Message) -> list[Message]:
    return list(store.by_index(OWNER_INDEX, owner.metadata.uid))  # type: ignore[attr-defined]


def claim_candidates(store: Any, owner: Message) -> list[Message]:
    """What an owner may claim: what it controls plus the orphans of its namespace."""
    meta = owner.metadata  # type: ignore[attr-defined]
    return [*store.by_index(OWNER_INDEX, meta.uid), *store.by_index(ORPHAN_INDEX, meta.namespace)]


def owner_reference(owner: Message, *, block: bool = True) -> meta_pb2.OwnerReference:
    info = REGISTRY.by_message(owner)
    meta = owner.metadata  # type: ignore[attr-defined]
    return meta_pb2.OwnerReference(
        api_version=info.api_version,
        kind=info.kind,
        name=meta.name,
        uid=meta.uid,
        controller=True,
        block_owner_deletion=block,
    )


def pod_from_template(
    template: core_pb2.PodTemplateSpec,
    owner: Message,
    *,
    name: str = "",
    generate_name: str = "",
    extra_labels: Mapping[str, str] | None = None,
) -> core_pb2.Pod:
    """The pod a controller creates: the template's metadata and spec plus a controller ref."""
    meta = owner.metadata  # type: ignore[attr-defined]
    pod = core_pb2.Pod()
    pod.metadata.namespace = meta.namespace
    if name:
        pod.metadata.name = name
    else:
        pod.metadata.generate_name = generate_name or f"{meta.name}-"
    pod.metadata.labels.update(template.metadata.labels)
    pod.metadata.labels.update(extra_labels or {})
    pod.metadata.annotations.update(template.metadata.annotations)
    pod.metadata.finalizers.extend(template.metadata.finalizers)
    pod.metadata.owner_references.append(owner_reference(owner))
    pod.spec.CopyFrom(template.spec)
    return pod


def _phase_rank(pod: core_pb2.Pod) -> int:
    return {"Pending": 0, "Unknown": 1, "Running": 2}.get(pod.status.phase, 0)


def restarts(pod: core_pb2.Pod) -> int:
    return sum(status.restart_count for status in pod.status.container_statuses)


def deletion_rank(pod: core_pb2.Pod) -> tuple[int, int, int, float, int, float]:
    """Sort key: the least valuable pod first (controller.ActivePods): unscheduled before
    scheduled, pending before running, not ready before ready, recently ready before long
    ready, more restarts before fewer, newer before older."""
    condition = ready_condition(pod)
    ready = condition is not None and condition.status == "True"
    ready_since = seconds(condition.last_transition_time) if ready and condition is not None else 0.0
    return (
        1 if pod.spec.node_name else 0,
        _phase_rank(pod),
        1 if ready else 0,
        -ready_since,
        -restarts(pod),
        -seconds(pod.metadata.creation_timestamp),
    )


def least_valuable(pods: Iterable[core_pb2.Pod], count: int) -> list[core_pb2.Pod]:
    return sorted(pods, key=deletion_rank)[:count]


def template_labels_match(labels: Mapping[str, str], pod: core_pb2.Pod) -> bool:
    return all(pod.metadata.labels.get(k) == v for k, v in labels.items())
