"""NodeResourcesFit (PodFitsResources): the pod's requests fit in what the node's pods leave of
its allocatable, for every resource the pod asks for, and the node has room for one more pod."""

from __future__ import annotations

from services.scheduler.filters.base import CycleState, Filter, Reasons
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo
from services.scheduler.resources import Resources


def insufficient(request: Resources, pod_count: int, node: NodeInfo) -> list[str]:
    """Every reason the pod does not fit, as Kubernetes lists them (all at once, so the summary
    counts each shortage)."""
    reasons: list[str] = []
    if pod_count + 1 > node.allowed_pods:
        reasons.append("Too many pods")
    alloc, used = node.allocatable, node.requested
    if request.milli_cpu and request.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        reasons.append("Insufficient cpu")
    if request.memory and request.memory > alloc.memory - used.memory:
        reasons.append("Insufficient memory")
    if request.ephemeral_storage and request.ephemeral_storage > (
        alloc.ephemeral_storage - used.ephemeral_storage
    ):
        reasons.append("Insufficient ephemeral-storage")
    for name, value in request.scalar.items():
        if value and value > alloc.scalar.get(name, 0) - used.scalar.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


class NodeResourcesFit(Filter):
    name = "NodeResourcesFit"
    resolvable = True

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        reasons = insufficient(pod.request, len(node.pods), node)
        return tuple(reasons) if reasons else None
