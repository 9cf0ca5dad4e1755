"""NodeAffinity (MatchNodeSelector): spec.nodeSelector (every pair) and the required node
affinity (any term; In, NotIn, Exists, DoesNotExist, Gt, Lt) must both hold."""

from __future__ import annotations

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState, Filter, Reasons
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo, terms_match


def matches_node_selector(pod: PodInfo, node: NodeInfo) -> bool:
    node_labels = node.labels
    for key, value in pod.node_selector.items():
        if node_labels.get(key) != value:
            return False
    terms = pod.required_node_terms
    return terms is None or terms_match(terms, node_labels, node.name)


class NodeAffinity(Filter):
    name = "NodeAffinity"
    REASON: Reasons = ("node(s) didn't match Pod's node affinity/selector",)

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(pod.node_selector) or pod.required_node_terms is not None

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        return None if matches_node_selector(pod, node) else self.REASON
