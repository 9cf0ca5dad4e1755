"""A node as the scheduler sees it: allocatable, what its pods request, their host ports, taints,
readiness and images, plus a generation that changes whenever any of it changes.

The generation is the contract with the equivalence and score caches: a cached result for a
node is valid exactly while the node's generation is the one it was computed at.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from pinnace.api.core.v1 import core_pb2
from services.scheduler.podinfo import WILDCARD_IP, PodInfo, image_name
from services.scheduler.resources import PODS, Resources, amount

_generations = itertools.count(1)
DEFAULT_ALLOWED_PODS = 110


def next_generation() -> int:
    return next(_generations)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(eq=False, slots=True)
class NodeInfo:
    name: str
    node: core_pb2.Node | None = None
    labels: dict[str, str] = field(default_factory=dict)
    allocatable: Resources = field(default_factory=Resources)
    allowed_pods: int = 0
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    ready: bool = True
    images: dict[str, int] = field(default_factory=dict)
    requested: Resources = field(default_factory=Resources)
    non_zero_cpu: int = 0
    non_zero_memory: int = 0
    pods: dict[str, PodInfo] = field(default_factory=dict)
    # (protocol, port) -> host IPs in use, so a wildcard clash is one lookup.
    used_ports: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    pods_with_affinity: dict[str, PodInfo] = field(default_factory=dict)
    generation: int = field(default_factory=next_generation)

    def set_node(self, node: core_pb2.Node) -> bool:
        """Adopt a new version of the Node; True when anything the scheduler reads changed."""
        status = node.status
        allocatable = status.allocatable or status.capacity
        ready = next((c.status == "True" for c in status.conditions if c.type == "Ready"), True)
        images: dict[str, int] = {}
        for image in status.images:
            for name in image.names:
                images[image_name(name)] = image.size_bytes
        signature = (
            dict(node.metadata.labels),
            Resources.from_map(allocatable),
            amount(PODS, allocatable[PODS]) if PODS in allocatable else DEFAULT_ALLOWED_PODS,
            tuple(Taint(t.key, t.value, t.effect) for t in node.spec.taints),
            node.spec.unschedulable,
            ready,
            images,
        )
        self.node = node
        current = (
            self.labels,
            self.allocatable,
            self.allowed_pods,
            self.taints,
            self.unschedulable,
            self.ready,
            self.images,
        )
        if current == signature:
            return False
        (
            self.labels,
            self.allocatable,
            self.allowed_pods,
            self.taints,
            self.unschedulable,
            self.ready,
            self.images,
        ) = signature
        self.generation = next_generation()
        return True

    def add_pod(self, pod: PodInfo) -> None:
        self.pods[pod.key] = pod
        self.requested.add(pod.request)
        self.non_zero_cpu += pod.non_zero_cpu
        self.non_zero_memory += pod.non_zero_memory
        for ip, protocol, port in pod.host_ports:
            ips = self.used_ports.setdefault((protocol, port), {})
            ips[ip] = ips.get(ip, 0) + 1
        if pod.has_affinity:
            self.pods_with_affinity[pod.key] = pod
        self.generation = next_generation()

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        self.requested.add(pod.request, -1)
        self.non_zero_cpu -= pod.non_zero_cpu
        self.non_zero_memory -= pod.non_zero_memory
        for ip, protocol, port in pod.host_ports:
            ips = self.used_ports.get((protocol, port), {})
            ips[ip] = ips.get(ip, 1) - 1
            if ips[ip] <= 0:
                del ips[ip]
            if not ips:
                self.used_ports.pop((protocol, port), None)
        self.pods_with_affinity.pop(key, None)
        self.generation = next_generation()
        return pod

    def port_conflict(self, ip: str, protocol: str, port: int) -> bool:
        ips = self.used_ports.get((protocol, port))
        if not ips:
            return False
        return ip == WILDCARD_IP or WILDCARD_IP in ips or ip in ips

    def clone(self) -> NodeInfo:
        """A copy whose pods can be added and removed without touching the original (preemption
        and nominated pods simulate on it)."""
        copy = NodeInfo(
            self.name,
            self.node,
            self.labels,
            self.allocatable,
            self.allowed_pods,
            self.taints,
            self.unschedulable,
            self.ready,
            self.images,
            self.requested.copy(),
            self.non_zero_cpu,
            self.non_zero_memory,
            dict(self.pods),
            {k: dict(v) for k, v in self.used_ports.items()},
            dict(self.pods_with_affinity),
        )
        copy.generation = self.generation
        return copy


def node_info(node: core_pb2.Node) -> NodeInfo:
    info = NodeInfo(node.metadata.name)
    info.set_node(node)
    return info
