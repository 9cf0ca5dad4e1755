"""Round-robin load balancing with ClientIP affinity, as Kubernetes' userspace LoadBalancerRR
(roundrobin.go): endpoints are shuffled when the set changes and taken in turn; a client with
an affinity record keeps its endpoint while the record is younger than the timeout, unless the
caller asks for a reset because dialling that endpoint just failed."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.proxy.service_port import ServicePortName


class NoEndpointsError(LookupError):
    """The service port is unknown or has no endpoints: the connection is refused."""


@dataclass
class _Affinity:
    endpoint: str
    last_used: float


@dataclass
class _Balancer:
    endpoints: list[str] = field(default_factory=list)
    index: int = 0
    affinity_seconds: int = 0
    affinity: dict[str, _Affinity] = field(default_factory=dict)


class LoadBalancerRR:
    def __init__(self, clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.services: dict[ServicePortName, _Balancer] = {}

    def new_service(self, name: ServicePortName, affinity_seconds: int) -> None:
        balancer = self.services.setdefault(name, _Balancer())
        if balancer.affinity_seconds != affinity_seconds:
            balancer.affinity_seconds = affinity_seconds
            balancer.affinity.clear()

    def delete_service(self, name: ServicePortName) -> None:
        self.services.pop(name, None)

    def update_endpoints(self, name: ServicePortName, endpoints: Sequence[str]) -> None:
        balancer = self.services.setdefault(name, _Balancer())
        if sorted(balancer.endpoints) == sorted(endpoints):
            return
        shuffled = list(endpoints)
        self.rng.shuffle(shuffled)
        balancer.endpoints, balancer.index = shuffled, 0
        alive = set(endpoints)
        for client in [c for c, a in balancer.affinity.items() if a.endpoint not in alive]:
            del balancer.affinity[client]

    def next_endpoint(self, name: ServicePortName, client_ip: str, reset_affinity: bool = False) -> str:
        balancer = self.services.get(name)
        if balancer is None or not balancer.endpoints:
            raise NoEndpointsError(f"no endpoints for {name}")
        now = self.clock()
        if balancer.affinity_seconds and not reset_affinity:
            record = balancer.affinity.get(client_ip)
            if record is not None and int(now - record.last_used) < balancer.affinity_seconds:
                record.last_used = now
                return record.endpoint
        endpoint = balancer.endpoints[balancer.index % len(balancer.endpoints)]
        balancer.index = (balancer.index + 1) % len(balancer.endpoints)
        if balancer.affinity_seconds:
            balancer.affinity[client_ip] = _Affinity(endpoint, now)
        return endpoint

    def cleanup_stale_sticky_sessions(self) -> None:
        now = self.clock()
        for balancer in self.services.values():
            ttl = balancer.affinity_seconds
            for client in [c for c, a in balancer.affinity.items() if int(now - a.last_used) >= ttl]:
                del balancer.affinity[client]
