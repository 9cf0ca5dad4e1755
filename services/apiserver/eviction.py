"""The pods/eviction subresource: a delete that respects PodDisruptionBudgets, as Kubernetes'
EvictionREST does.

A pod that is finished, pending or already terminating costs no availability and is deleted
at once. Otherwise the (single) budget covering it must allow a disruption: its
`disruptionsAllowed` is decremented and the pod recorded in `disruptedPods` with a
conditional write of the budget's status (at the resourceVersion read), so two evictions
racing for the last allowed disruption cannot both win; the loser re-reads and is refused with
429 TooManyRequests. Only then is the pod deleted (gracefully, with the caller's options).
An unready pod may go without spending the budget when the budget is already met
(IfHealthyBudget) or when the budget says AlwaysAllow; its delete then carries a
resourceVersion precondition, so a pod that turned ready meanwhile is not deleted.
"""

from __future__ import annotations

import time

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from pinnace.api.policy.v1 import policy_pb2
from services.apiserver import errors
from services.apiserver.registry import Registry
from services.machinery import disruption
from services.machinery.kinds import REGISTRY

# Kubernetes' EvictionsRetry: attempts on write conflicts.
CONFLICT_RETRIES = 20
BUDGET_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
MANY_BUDGETS_MESSAGE = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
)

_PODS = REGISTRY.by_name("pods")
_BUDGETS = REGISTRY.by_name("poddisruptionbudgets")


def too_many_requests(cause: str, retry_after: int) -> errors.APIError:
    error = errors.APIError(
        "TooManyRequests",
        BUDGET_MESSAGE,
        causes=[meta_pb2.StatusCause(reason=disruption.DISRUPTION_BUDGET_CAUSE, message=cause)],
    )
    error.details.retry_after_seconds = retry_after
    return error


def still_processing(name: str) -> errors.APIError:
    return too_many_requests(f"The disruption budget {name} is still being processed by the server.", 10)


def can_ignore_budget(pod: core_pb2.Pod) -> bool:
    """Pods whose loss disrupts nothing: finished, not started, or already going."""
    return pod.status.phase in ("Succeeded", "Failed", "Pending") or pod.metadata.HasField(
        "deletion_timestamp"
    )


def _is_conflict(exc: errors.APIError) -> bool:
    return exc.reason == "Conflict"


class Evictions:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def evict(self, namespace: str, name: str, options: meta_pb2.DeleteOptions | None) -> None:
        options = options or meta_pb2.DeleteOptions()
        dry_run = "All" in options.dry_run
        pinned = options.preconditions.HasField("resource_version")
        pod = await self._pod(namespace, name)
        if can_ignore_budget(pod):
            await self._delete(namespace, name, options, dry_run)
            return
        budgets = await self._budgets(pod)
        if len(budgets) > 1:
            raise errors.APIError("InternalError", MANY_BUDGETS_MESSAGE)
        precondition = False
        if budgets:
            budget = budgets[0]
            if not disruption.is_pod_ready(pod) and self._unhealthy_may_go(budget):
                precondition = True
            else:
                await self._spend(budget, pod.metadata.name, dry_run)
        if precondition:
            with_rv = meta_pb2.DeleteOptions()
            with_rv.CopyFrom(options)
            with_rv.preconditions.resource_version = pod.metadata.resource_version
            try:
                await self._delete(namespace, name, with_rv, dry_run)
            except errors.APIError as exc:
                if _is_conflict(exc) and not pinned:
                    raise still_processing(budgets[0].metadata.name) from None
                raise
            return
        await self._delete(namespace, name, options, dry_run)

    async def _pod(self, namespace: str, name: str) -> core_pb2.Pod:
        pod = await self.registry.get(_PODS, namespace, name)
        assert isinstance(pod, core_pb2.Pod)
        return pod

    async def _budgets(self, pod: core_pb2.Pod) -> list[policy_pb2.PodDisruptionBudget]:
        page = await self.registry.list(_BUDGETS, pod.metadata.namespace)
        found: list[policy_pb2.PodDisruptionBudget] = []
        for item in page.items:
            assert isinstance(item, policy_pb2.PodDisruptionBudget)
            if disruption.covers(item, pod.metadata.namespace, pod.metadata.labels):
                found.append(item)
        return found

    @staticmethod
    def _unhealthy_may_go(budget: policy_pb2.PodDisruptionBudget) -> bool:
        """An unready pod does not count as healthy: deleting it spends nothing when the
        budget says AlwaysAllow, or (IfHealthyBudget) when the budget is met anyway."""
        if budget.spec.unhealthy_pod_eviction_policy == disruption.ALWAYS_ALLOW:
            return True
        status = budget.status
        return status.current_healthy >= status.desired_healthy and status.desired_healthy > 0

    async def _spend(self, budget: policy_pb2.PodDisruptionBudget, pod_name: str, dry_run: bool) -> None:
        """checkAndDecrement, retried on conflicts with a fresh read of the budget."""
        for attempt in range(CONFLICT_RETRIES):
            if attempt:
                fresh = await self.registry.get(_BUDGETS, budget.metadata.namespace, budget.metadata.name)
                assert isinstance(fresh, policy_pb2.PodDisruptionBudget)
                budget = fresh
            updated = _decremented(budget, pod_name)
            if dry_run:
                return
            try:
                await self.registry.update(updated, subresource="status")
                return
            except errors.APIError as exc:
                if not _is_conflict(exc):
                    raise
        raise errors.APIError(
            "ServiceUnavailable",
            f'couldn\'t update PodDisruptionBudget "{budget.metadata.name}" due to conflicts',
        )

    async def _delete(
        self, namespace: str, name: str, options: meta_pb2.DeleteOptions, dry_run: bool
    ) -> None:
        if dry_run:
            return
        await self.registry.delete(_PODS, namespace, name, options)


def _decremented(budget: policy_pb2.PodDisruptionBudget, pod_name: str) -> Message:
    """The budget with one disruption spent on `pod_name`, or the refusal."""
    status = budget.status
    name = budget.metadata.name
    if status.observed_generation < budget.metadata.generation:
        raise still_processing(name)
    if status.disruptions_allowed < 0:
        raise errors.forbidden(_BUDGETS, name, "pdb disruptions allowed is negative")
    if len(status.disrupted_pods) > disruption.MAX_DISRUPTED_PODS:
        raise errors.forbidden(
            _BUDGETS,
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        )
    if status.disruptions_allowed == 0:
        raise too_many_requests(
            f"The disruption budget {name} needs {status.desired_healthy} healthy pods "
            f"and has {status.current_healthy} currently",
            0,
        )
    updated = policy_pb2.PodDisruptionBudget()
    updated.CopyFrom(budget)
    updated.status.disruptions_allowed -= 1
    if updated.status.disruptions_allowed == 0:
        disruption.update_allowed_condition(updated.status)
    updated.status.disrupted_pods[pod_name].FromSeconds(int(time.time()))
    return updated
