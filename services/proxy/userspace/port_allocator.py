"""Proxy ports for userspace mode (Kubernetes' port_allocator.go): from --proxy-port-range a
random start then a sequential scan, so restarts do not reuse ports a client may still have
cached; with no range the kernel picks (port 0)."""

from __future__ import annotations

import random


class PortsExhaustedError(RuntimeError):
    pass


class PortAllocator:
    def __init__(self, low: int = 0, high: int = 0, rng: random.Random | None = None) -> None:
        self.low, self.high = low, high
        self.rng = rng or random.Random()
        self.used: set[int] = set()

    def allocate(self) -> int:
        """A free port of the range, or 0 (let the kernel choose) without a range."""
        if not self.low:
            return 0
        size = self.high - self.low + 1
        start = self.rng.randrange(size)
        for offset in range(size):
            port = self.low + (start + offset) % size
            if port not in self.used:
                self.used.add(port)
                return port
        raise PortsExhaustedError(f"no free proxy port in {self.low}-{self.high}")

    def release(self, port: int) -> None:
        self.used.discard(port)
