"""SelectorSpread: pods selected by the same services and controllers (RC, RS, StatefulSet)
spread across nodes and, when nodes carry zone labels, across zones (zones weigh 2/3)."""

from __future__ import annotations

from services.machinery import labels
from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo
from services.scheduler.scores.base import MAX_NODE_SCORE, Score

ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
ZONE_WEIGHTING = 2.0 / 3.0


def zone_of(node_labels: dict[str, str]) -> str:
    zone = next((node_labels[k] for k in ZONE_LABELS if k in node_labels), "")
    region = next((node_labels[k] for k in REGION_LABELS if k in node_labels), "")
    return f"{region}:\x00:{zone}" if zone or region else ""


def selectors_for(pod: PodInfo, cache: Cache) -> list[labels.Selector]:
    found = []
    for source in (cache.services, cache.controllers):
        for namespace, selector in source.values():
            if namespace == pod.namespace and not selector.is_empty() and selector.matches(pod.labels):
                found.append(selector)
    return found


class SelectorSpread(Score):
    name = "SelectorSpread"
    node_local = False
    normalizes = True

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(selectors_for(pod, cache))

    def prescore(self, state: CycleState) -> None:
        pod, cache = state.pod, state.cache
        selectors = selectors_for(pod, cache)
        # Kubernetes merges the selectors: a pod counts when it matches all of them.
        merged = labels.Selector(tuple(r for s in selectors for r in s.requirements))
        counts: dict[str, int] = {}
        for other in cache.matching_pods(merged):
            if other.namespace != pod.namespace or other.terminating or other.key == pod.key:
                continue
            node = cache.pod_node.get(other.key)
            if node is not None:
                counts[node] = counts.get(node, 0) + 1
        state.data["spread_counts"] = counts

    def score(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> int:
        counts: dict[str, int] = state.data["spread_counts"]
        return counts.get(node.name, 0)

    def normalize(self, nodes: list[NodeInfo], scores: list[int], state: CycleState) -> None:
        counts: dict[str, int] = state.data["spread_counts"]
        by_zone: dict[str, int] = {}
        zones = []
        for node in nodes:
            zone = zone_of(node.labels)
            zones.append(zone)
        cache = state.cache
        for node_name, count in counts.items():
            info = cache.nodes.get(node_name)
            if info is not None:
                zone = zone_of(info.labels)
                if zone:
                    by_zone[zone] = by_zone.get(zone, 0) + count
        max_node = max(scores, default=0)
        max_zone = max(by_zone.values(), default=0)
        have_zones = any(zones)
        for i, raw in enumerate(scores):
            score = MAX_NODE_SCORE * (max_node - raw) / max_node if max_node > 0 else float(MAX_NODE_SCORE)
            if have_zones and zones[i]:
                zone_score = (
                    MAX_NODE_SCORE * (max_zone - by_zone.get(zones[i], 0)) / max_zone
                    if max_zone > 0
                    else float(MAX_NODE_SCORE)
                )
                score = score * (1.0 - ZONE_WEIGHTING) + ZONE_WEIGHTING * zone_score
            scores[i] = int(score)
