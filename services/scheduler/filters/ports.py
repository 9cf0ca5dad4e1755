"""NodePorts (PodFitsHostPorts): a host port is taken when another pod on the node uses the
same protocol and port on the same IP, or either side binds the wildcard 0.0.0.0."""

from __future__ import annotations

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState, Filter, Reasons
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo


class NodePorts(Filter):
    name = "NodePorts"
    resolvable = True
    REASON: Reasons = ("node(s) didn't have free ports for the requested pod ports",)

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(pod.host_ports)

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        for ip, protocol, port in pod.host_ports:
            if node.port_conflict(ip, protocol, port):
                return self.REASON
        return None
