"""The disruption controller: keeps every PodDisruptionBudget's status, which the eviction
subresource spends and the scheduler's preemption reads (Kubernetes' DisruptionController).

For each budget, over the pods its selector covers in its namespace:

- expectedPods and desiredHealthy: an integer minAvailable needs that many healthy pods out
  of the pods found; a percentage minAvailable, or maxUnavailable, is taken of the sum of the
  scales of the pods' controllers (ReplicationController, ReplicaSet, the Deployment owning a
  ReplicaSet, StatefulSet), rounded up. Pods without a controller are reported (UnmanagedPods)
  and left out; a controller that cannot be found makes the sync fail safe: disruptionsAllowed
  becomes 0 with DisruptionAllowed=False/SyncFailed.
- currentHealthy: Ready pods that are not being deleted and not in disruptedPods (pods an
  eviction let go, counted as gone for 2 minutes; the budget is re-checked when that runs out).
- disruptionsAllowed = currentHealthy - desiredHealthy, at least 0, and 0 while expectedPods
  is 0 (a budget whose pods are not seen yet must not allow anything).

The status is written at the cached resourceVersion: a conflict means an eviction spent the
budget meanwhile, and the sync runs again on the fresh object instead of overwriting it.
"""

from __future__ import annotations

import time

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.policy.v1 import policy_pb2
from services.client.errors import NotFoundError
from services.client.events import NORMAL, WARNING
from services.controllers import deployment_util as du
from services.controllers.base import Controller, ControllerContext, object_key
from services.controllers.podutil import controller_ref, seconds
from services.machinery import disruption

UNMANAGED_MESSAGE = (
    "Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. "
    "As a result, the status of the PDB cannot be calculated correctly, which may result in undefined "
    'behavior. To account for these pods please set ".spec.minAvailable" field of the PDB to an '
    "integer value."
)


class ExpectedCountError(Exception):
    """A covered pod's controller (and so the budget's denominator) cannot be found."""


def healthy_count(pods: list[core_pb2.Pod], disrupted: dict[str, float], now: float) -> int:
    """countHealthyPods: Ready, not deleting, not just evicted."""
    count = 0
    for pod in pods:
        if pod.metadata.HasField("deletion_timestamp"):
            continue
        when = disrupted.get(pod.metadata.name)
        if when is not None and when + disruption.DELETION_TIMEOUT_SECONDS > now:
            continue
        count += disruption.is_pod_ready(pod)
    return count


def allowed(current: int, desired: int, expected: int) -> int:
    return max(current - desired, 0) if expected > 0 else 0


class DisruptionController(Controller):
    name = "disruption"
    default_workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.budgets = self.informer("poddisruptionbudgets")
        self.pods = self.informer("pods")
        self.rcs = self.informer("replicationcontrollers")
        self.replicasets = self.informer("replicasets")
        self.deployments = self.informer("deployments")
        self.statefulsets = self.informer("statefulsets")
        self.budgets.add_handlers(on_add=self.enqueue_obj, on_update=lambda _o, n: self.enqueue_obj(n))
        self.pods.add_handlers(on_add=self._pod_event, on_update=self._pod_updated, on_delete=self._pod_event)

    def _pod_event(self, pod: Message) -> None:
        assert isinstance(pod, core_pb2.Pod)
        for budget in self.budgets.store.by_index("namespace", pod.metadata.namespace):
            assert isinstance(budget, policy_pb2.PodDisruptionBudget)
            if disruption.covers(budget, pod.metadata.namespace, pod.metadata.labels):
                self.enqueue_obj(budget)

    def _pod_updated(self, old: Message, new: Message) -> None:
        assert isinstance(old, core_pb2.Pod) and isinstance(new, core_pb2.Pod)
        if old.metadata.labels != new.metadata.labels:
            self._pod_event(old)
        self._pod_event(new)

    def covered_pods(self, budget: policy_pb2.PodDisruptionBudget) -> list[core_pb2.Pod]:
        namespace = budget.metadata.namespace
        pods = []
        for pod in self.pods.store.by_index("namespace", namespace):
            assert isinstance(pod, core_pb2.Pod)
            if disruption.covers(budget, namespace, pod.metadata.labels):
                pods.append(pod)
        return pods

    async def sync(self, key: str) -> None:
        cached = self.budgets.store.get(key)
        if not isinstance(cached, policy_pb2.PodDisruptionBudget):
            return
        budget = policy_pb2.PodDisruptionBudget()
        budget.CopyFrom(cached)
        pods = self.covered_pods(budget)
        if not pods:
            self.recorder.event(budget, NORMAL, "NoPods", "No matching pods found")
        try:
            expected, desired, unmanaged = self.expected_count(budget, pods)
        except ExpectedCountError as exc:
            self.recorder.event(
                budget,
                WARNING,
                "CalculateExpectedPodCountFailed",
                f"Failed to calculate the number of expected pods: {exc}",
            )
            await self._fail_safe(budget, str(exc))
            return
        if unmanaged:
            selector = str(disruption.selector(budget))
            self.recorder.event(budget, WARNING, "UnmanagedPods", UNMANAGED_MESSAGE.format(selector=selector))
        now = time.time()
        disrupted, recheck = self._disrupted(budget, pods, now)
        current = healthy_count(pods, disrupted, now)
        await self._write(budget, current, desired, expected, disrupted)
        if recheck is not None:
            self.enqueue_after(key, max(recheck - now, 0.0) + 0.05)

    # ------------------------------------------------------------------ counts

    def expected_count(
        self, budget: policy_pb2.PodDisruptionBudget, pods: list[core_pb2.Pod]
    ) -> tuple[int, int, list[str]]:
        """(expectedPods, desiredHealthy, unmanaged pod names) as getExpectedPodCount."""
        spec = budget.spec
        if spec.HasField("max_unavailable"):
            expected, unmanaged = self.expected_scale(pods)
            unavailable = du.scaled_value(spec.max_unavailable, expected, True)
            return expected, max(expected - unavailable, 0), unmanaged
        if spec.HasField("min_available"):
            if spec.min_available.WhichOneof("value") == "int_val":
                return len(pods), spec.min_available.int_val, []
            expected, unmanaged = self.expected_scale(pods)
            return expected, du.scaled_value(spec.min_available, expected, True), unmanaged
        return 0, 0, []

    def expected_scale(self, pods: list[core_pb2.Pod]) -> tuple[int, list[str]]:
        """Sum of the scales of the controllers of `pods`; pods without one are returned."""
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(pod.metadata.name)
                continue
            if ref.uid in scales:
                continue
            found = self._scale_of(pod.metadata.namespace, ref.kind, ref.name, ref.uid)
            if found is None:
                raise ExpectedCountError(f'found no controllers for pod "{pod.metadata.name}"')
            uid, replicas = found
            scales[uid] = replicas
        return sum(scales.values()), unmanaged

    def _scale_of(self, namespace: str, kind: str, name: str, uid: str) -> tuple[str, int] | None:
        """The controller's uid and replicas (a ReplicaSet's Deployment answers for it)."""
        key = f"{namespace}/{name}"
        if kind == "ReplicationController":
            rc = self.rcs.store.get(key)
            if isinstance(rc, core_pb2.ReplicationController) and rc.metadata.uid == uid:
                return uid, rc.spec.replicas
        elif kind == "StatefulSet":
            sts = self.statefulsets.store.get(key)
            if isinstance(sts, apps_pb2.StatefulSet) and sts.metadata.uid == uid:
                return uid, sts.spec.replicas
        elif kind == "ReplicaSet":
            rs = self.replicasets.store.get(key)
            if not isinstance(rs, apps_pb2.ReplicaSet) or rs.metadata.uid != uid:
                return None
            owner = controller_ref(rs)
            if owner is None or owner.kind != "Deployment":
                return uid, rs.spec.replicas
            deployment = self.deployments.store.get(f"{namespace}/{owner.name}")
            if isinstance(deployment, apps_pb2.Deployment) and deployment.metadata.uid == owner.uid:
                return owner.uid, deployment.spec.replicas
        return None

    def _disrupted(
        self, budget: policy_pb2.PodDisruptionBudget, pods: list[core_pb2.Pod], now: float
    ) -> tuple[dict[str, float], float | None]:
        """buildDisruptedPodMap: evicted pods still expected to go, and the earliest time one
        of them stops being expected (when the budget must be re-checked)."""
        recorded = budget.status.disrupted_pods
        kept: dict[str, float] = {}
        recheck: float | None = None
        for pod in pods:
            if pod.metadata.HasField("deletion_timestamp") or pod.metadata.name not in recorded:
                continue
            when = seconds(recorded[pod.metadata.name])
            deadline = when + disruption.DELETION_TIMEOUT_SECONDS
            if deadline < now:
                self.recorder.event(
                    pod,
                    WARNING,
                    "NotDeleted",
                    f"Pod was expected by PDB {budget.metadata.namespace}/{budget.metadata.name} "
                    "to be deleted but it wasn't",
                )
                continue
            kept[pod.metadata.name] = when
            recheck = deadline if recheck is None else min(recheck, deadline)
        return kept, recheck

    # ------------------------------------------------------------------ writes

    async def _write(
        self,
        budget: policy_pb2.PodDisruptionBudget,
        current: int,
        desired: int,
        expected: int,
        disrupted: dict[str, float],
    ) -> None:
        status = policy_pb2.PodDisruptionBudgetStatus()
        status.CopyFrom(budget.status)
        status.current_healthy = current
        status.desired_healthy = desired
        status.expected_pods = expected
        status.disruptions_allowed = allowed(current, desired, expected)
        status.observed_generation = budget.metadata.generation
        status.ClearField("disrupted_pods")
        for name, when in disrupted.items():
            status.disrupted_pods[name].FromSeconds(int(when))
        disruption.update_allowed_condition(status)
        await self._update(budget, status)

    async def _fail_safe(self, budget: policy_pb2.PodDisruptionBudget, reason: str) -> None:
        """At least forbid disruptions when the status cannot be computed (fail closed)."""
        status = policy_pb2.PodDisruptionBudgetStatus()
        status.CopyFrom(budget.status)
        status.disruptions_allowed = 0
        disruption.set_condition(
            status, disruption.DISRUPTION_ALLOWED, "False", disruption.SYNC_FAILED, reason
        )
        await self._update(budget, status)

    async def _update(
        self, budget: policy_pb2.PodDisruptionBudget, status: policy_pb2.PodDisruptionBudgetStatus
    ) -> None:
        if status == budget.status:
            return
        updated = policy_pb2.PodDisruptionBudget()
        updated.CopyFrom(budget)
        updated.status.CopyFrom(status)
        try:
            await self.client.update_status(updated)
        except NotFoundError:
            return
        self.log.debug("budget status", key=object_key(budget), allowed=status.disruptions_allowed)
