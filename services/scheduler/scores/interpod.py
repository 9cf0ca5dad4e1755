"""Preferred inter-pod affinity: weights of the incoming pod's preferred (anti-)affinity terms
toward domains holding matching pods, plus the symmetric weights of existing pods' preferred
terms (and required affinity, at weight 1) that match the incoming pod; min-max scaled."""

from __future__ import annotations

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo
from services.scheduler.scores.base import MAX_NODE_SCORE, Score

HARD_POD_AFFINITY_WEIGHT = 1


class InterPodAffinityPreferred(Score):
    name = "InterPodAffinity"
    node_local = False
    normalizes = True
    default_weight = 2

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(pod.preferred_affinity or pod.preferred_anti_affinity or cache.pods_scoring_others)

    def prescore(self, state: CycleState) -> None:
        pod, cache = state.pod, state.cache
        weights: dict[str, dict[str, int]] = {}

        def add(key: str, node: NodeInfo | None, weight: int) -> None:
            if node is not None and key in node.labels:
                by_value = weights.setdefault(key, {})
                value = node.labels[key]
                by_value[value] = by_value.get(value, 0) + weight

        for sign, terms in ((1, pod.preferred_affinity), (-1, pod.preferred_anti_affinity)):
            for term in terms:
                for other in cache.pods_matching_term(term):
                    if other.key != pod.key:
                        add(term.topology_key, cache.node_of(other.key), sign * term.weight)
        namespaces = cache.namespace_labels
        for other in cache.pods_scoring_others.values():
            if other.key == pod.key:
                continue
            node = cache.node_of(other.key)
            for term in other.preferred_affinity:
                if term.matches_pod(pod, namespaces):
                    add(term.topology_key, node, term.weight)
            for term in other.preferred_anti_affinity:
                if term.matches_pod(pod, namespaces):
                    add(term.topology_key, node, -term.weight)
            for term in other.required_affinity:
                if term.matches_pod(pod, namespaces):
                    add(term.topology_key, node, HARD_POD_AFFINITY_WEIGHT)
        state.data["interpod_weights"] = weights

    def score(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> int:
        weights: dict[str, dict[str, int]] = state.data["interpod_weights"]
        total = 0
        for key, by_value in weights.items():
            value = node.labels.get(key)
            if value is not None:
                total += by_value.get(value, 0)
        return total

    def normalize(self, nodes: list[NodeInfo], scores: list[int], state: CycleState) -> None:
        if not scores:
            return
        low, high = min(scores), max(scores)
        span = high - low
        for i, raw in enumerate(scores):
            scores[i] = MAX_NODE_SCORE * (raw - low) // span if span > 0 else 0
