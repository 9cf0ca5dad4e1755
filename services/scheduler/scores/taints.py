"""PreferNoSchedule taints: the fewer intolerable ones a node has, the better (reversed)."""

from __future__ import annotations

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo
from services.scheduler.scores.base import Score, normalize_max


class TaintTolerationPreferred(Score):
    name = "TaintToleration"
    normalizes = True
    default_weight = 3

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(cache.prefer_no_schedule_nodes)

    def score(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> int:
        count = 0
        for taint in node.taints:
            if taint.effect != "PreferNoSchedule":
                continue
            if not any(
                t.tolerates(taint.key, taint.value, taint.effect)
                for t in pod.tolerations
                if t.effect in ("", "PreferNoSchedule")
            ):
                count += 1
        return count

    def normalize(self, nodes: list[NodeInfo], scores: list[int], state: CycleState) -> None:
        normalize_max(scores, reverse=True)
