"""The notes' policy predicates, configured with arguments.

CheckNodeLabelPresence: with `presence: true` a node must carry every listed label key (a
"dedicated hardware" rule); with `presence: false` it must carry none of them (to retire
nodes by labelling them).

CheckServiceAffinity: pods of one service land on nodes that agree on the listed labels
(e.g. `zone`): the first pod placed decides the value, later pods follow it; the pod's own
nodeSelector fixes a value up front.
"""

from __future__ import annotations

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState, Filter, Reasons
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo


class CheckNodeLabelPresence(Filter):
    name = "CheckNodeLabelPresence"
    REASON: Reasons = ("node(s) didn't have the requested labels",)

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(self.args.get("labels"))

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        present = bool(self.args.get("presence", True))
        for key in self.args.get("labels", ()):
            if (key in node.labels) != present:
                return self.REASON
        return None


class CheckServiceAffinity(Filter):
    name = "CheckServiceAffinity"
    node_local = False
    REASON: Reasons = ("node(s) didn't match service affinity",)

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(self.args.get("labels"))

    def prefilter(self, state: CycleState) -> str | None:
        pod, cache = state.pod, state.cache
        keys: list[str] = list(self.args.get("labels", ()))
        wanted = {k: pod.node_selector[k] for k in keys if k in pod.node_selector}
        missing = [k for k in keys if k not in wanted]
        if missing:
            selectors = [
                sel for ns, sel in cache.services.values() if ns == pod.namespace and sel.matches(pod.labels)
            ]
            if selectors:
                for other in cache.matching_pods(selectors[0]):
                    if other.key == pod.key or other.namespace != pod.namespace:
                        continue
                    if not all(s.matches(other.labels) for s in selectors[1:]):
                        continue
                    node = cache.node_of(other.key)
                    if node is None or node.node is None:
                        continue
                    for key in missing:
                        if key in node.labels:
                            wanted[key] = node.labels[key]
                    break
        state.data["service_affinity"] = wanted
        return None

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        wanted: dict[str, str] = state.data["service_affinity"]
        for key, value in wanted.items():
            if node.labels.get(key) != value:
                return self.REASON
        return None
