"""TaintToleration (PodToleratesNodeTaints): every NoSchedule and NoExecute taint of the node
must be tolerated; PreferNoSchedule taints only lower the score (scores/taints.py)."""

from __future__ import annotations

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState, Filter, Reasons
from services.scheduler.nodeinfo import NodeInfo, Taint
from services.scheduler.podinfo import PodInfo

_EFFECTS = ("NoSchedule", "NoExecute")


def untolerated(pod: PodInfo, taints: tuple[Taint, ...], effects: tuple[str, ...]) -> Taint | None:
    for taint in taints:
        if taint.effect not in effects:
            continue
        if not any(t.tolerates(taint.key, taint.value, taint.effect) for t in pod.tolerations):
            return taint
    return None


class TaintToleration(Filter):
    name = "TaintToleration"

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return True

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        if not node.taints:
            return None
        taint = untolerated(pod, node.taints, _EFFECTS)
        if taint is None:
            return None
        return (f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}",)
