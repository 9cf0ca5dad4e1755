"""Preferred node affinity: the sum of the weights of the preferred terms a node matches,
scaled so the best node gets 100."""

from __future__ import annotations

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo
from services.scheduler.scores.base import Score, normalize_max


class NodeAffinityPreferred(Score):
    name = "NodeAffinity"
    normalizes = True
    default_weight = 2

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(pod.preferred_node_terms)

    def score(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> int:
        return sum(w for w, term in pod.preferred_node_terms if term.matches(node.labels, node.name))

    def normalize(self, nodes: list[NodeInfo], scores: list[int], state: CycleState) -> None:
        normalize_max(scores)
