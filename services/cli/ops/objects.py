"""Small helpers the workload operations share: typed access to an object's metadata and pod
template, the Ready/available test kubectl applies to pods, and read-modify-write with
retries on conflicts (what client-go's RetryOnConflict gives kubectl)."""

from __future__ import annotations

import time
from collections.abc import Callable

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.client.client import Client
from services.client.errors import ConflictError
from services.machinery.kinds import KindInfo

CONFLICT_RETRIES = 5


def meta_of(obj: Message) -> meta_pb2.ObjectMeta:
    meta: meta_pb2.ObjectMeta = obj.metadata  # type: ignore[attr-defined]
    return meta


def pod_template_of(obj: Message) -> core_pb2.PodTemplateSpec | None:
    """The pod template of a workload (deployments, replica sets, controllers, daemon sets,
    stateful sets, jobs), the job template's pod template of a cron job, else None."""
    spec = getattr(obj, "spec", None)
    if spec is None:
        return None
    if "job_template" in spec.DESCRIPTOR.fields_by_name:
        template: core_pb2.PodTemplateSpec = spec.job_template.spec.template
        return template
    if "template" in spec.DESCRIPTOR.fields_by_name:
        direct: core_pb2.PodTemplateSpec = spec.template
        return direct
    return None


def pod_spec_of(obj: Message) -> core_pb2.PodSpec | None:
    """The pod spec a command edits: a pod's own, or its template's for a workload."""
    if isinstance(obj, core_pb2.Pod):
        return obj.spec
    template = pod_template_of(obj)
    return template.spec if template is not None else None


def ready_condition(pod: core_pb2.Pod) -> core_pb2.PodCondition | None:
    for condition in pod.status.conditions:
        if condition.type == "Ready":
            return condition
    return None


def is_available(pod: core_pb2.Pod, min_ready_seconds: int = 0, now: float | None = None) -> bool:
    """Ready for at least min_ready_seconds and not being deleted (podutil.IsPodAvailable)."""
    if pod.metadata.HasField("deletion_timestamp"):
        return False
    condition = ready_condition(pod)
    if condition is None or condition.status != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = condition.last_transition_time.seconds + condition.last_transition_time.nanos / 1e9
    return since + min_ready_seconds <= (time.time() if now is None else now)


def controller_of(obj: Message) -> meta_pb2.OwnerReference | None:
    for ref in meta_of(obj).owner_references:
        if ref.controller:
            return ref
    return None


async def update_with_retries(
    client: Client,
    info: KindInfo,
    name: str,
    namespace: str,
    mutate: Callable[[Message], None],
    *,
    dry_run: bool = False,
) -> Message:
    """Get, mutate, update; on a conflict read again and repeat. `mutate` may raise to stop."""
    attempts = 0
    while True:
        current = await client.get(info, name, namespace)
        mutate(current)
        try:
            return await client.update(current, dry_run=dry_run)
        except ConflictError:
            attempts += 1
            if attempts >= CONFLICT_RETRIES:
                raise
