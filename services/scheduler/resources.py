"""Resource amounts as the scheduler counts them: integers (milli-CPU, bytes, counts), summed
over a pod the way Kubernetes' computePodResourceRequest does.

Quantities are parsed once per distinct string (lru_cache): a cluster uses a handful of request
values, and exact Fraction arithmetic is far too slow for a loop that runs per pod and node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from pinnace.api.core.v1 import core_pb2
from services.machinery.quantity import QuantityError, parse_quantity

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"
# What a container without a request counts as when scoring (Kubernetes' non-zero defaults), so
# best-effort pods still spread instead of piling onto one node.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


@lru_cache(maxsize=8192)
def amount(name: str, text: str) -> int:
    """CPU in milli-cores, everything else in whole units (bytes, counts), rounded up."""
    try:
        quantity = parse_quantity(text)
    except QuantityError:
        return 0
    return quantity.milli_value() if name == CPU else quantity.int_value()


@dataclass(slots=True)
class Resources:
    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_map(cls, values: Mapping[str, str]) -> Resources:
        res = cls()
        for name, text in values.items():
            res.set(name, amount(name, text))
        return res

    def set(self, name: str, value: int) -> None:
        if name == CPU:
            self.milli_cpu = value
        elif name == MEMORY:
            self.memory = value
        elif name == EPHEMERAL_STORAGE:
            self.ephemeral_storage = value
        elif name != PODS:
            self.scalar[name] = value

    def add(self, other: Resources, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        for name, value in other.scalar.items():
            self.scalar[name] = self.scalar.get(name, 0) + sign * value

    def set_max(self, other: Resources) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for name, value in other.scalar.items():
            self.scalar[name] = max(self.scalar.get(name, 0), value)

    def copy(self) -> Resources:
        return Resources(self.milli_cpu, self.memory, self.ephemeral_storage, dict(self.scalar))

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage or any(self.scalar.values()))


def _sum(containers: Iterable[core_pb2.Container], non_zero: bool) -> Resources:
    total = Resources()
    for container in containers:
        requests = container.resources.requests
        res = Resources.from_map(requests)
        if non_zero:
            if CPU not in requests:
                res.milli_cpu = DEFAULT_MILLI_CPU_REQUEST
            if MEMORY not in requests:
                res.memory = DEFAULT_MEMORY_REQUEST
        total.add(res)
    return total


def pod_requests(spec: core_pb2.PodSpec, *, non_zero: bool = False) -> Resources:
    """Sum of the app containers, raised to the largest init container (init containers run one
    at a time before the app containers), plus the pod overhead."""
    total = _sum(spec.containers, non_zero)
    for init in spec.init_containers:
        total.set_max(_sum([init], non_zero))
    if spec.overhead:
        total.add(Resources.from_map(spec.overhead))
    return total


def requests_cpu_and_memory(spec: core_pb2.PodSpec) -> bool:
    """Every container and init container requests both cpu and memory: the non-zero sum is
    then the plain sum, and need not be computed again."""
    for containers in (spec.containers, spec.init_containers):
        for container in containers:
            requests = container.resources.requests
            if CPU not in requests or MEMORY not in requests:
                return False
    return True
