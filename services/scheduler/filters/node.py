"""Filters on the node's own state: cordoned, not ready, the pod's spec.nodeName."""

from __future__ import annotations

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState, Filter, Reasons
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def tolerates(pod: PodInfo, key: str, effects: tuple[str, ...]) -> bool:
    return any(t.tolerates(key, "", effect) for t in pod.tolerations for effect in effects)


class NodeUnschedulable(Filter):
    """A cordoned node (spec.unschedulable) takes only pods that tolerate its taint."""

    name = "NodeUnschedulable"
    REASON: Reasons = ("node(s) were unschedulable",)

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        if node.unschedulable and not tolerates(pod, UNSCHEDULABLE_TAINT, ("NoSchedule",)):
            return self.REASON
        return None


class NodeReady(Filter):
    """The notes' CheckNodeCondition: no pod goes to a node whose Ready condition is not True,
    unless it tolerates the not-ready taint (DaemonSet pods do)."""

    name = "NodeReady"
    REASON: Reasons = ("node(s) were not ready",)

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        if not node.ready and not tolerates(pod, NOT_READY_TAINT, ("NoSchedule", "NoExecute")):
            return self.REASON
        return None


class NodeName(Filter):
    name = "NodeName"
    REASON: Reasons = ("node(s) didn't match the requested node name",)

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(pod.node_name)

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        return None if not pod.node_name or pod.node_name == node.name else self.REASON
