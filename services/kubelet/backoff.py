"""Exponential back-off of restarts and image pulls, per (pod, container): 10 s doubling to
5 min, forgotten after the container ran 10 minutes without trouble (Kubernetes' defaults).

The state is in memory: after a kubelet restart a crashing container gets one immediate
retry, then backs off again, which is what Kubernetes does too."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float
    until: float
    last_update: float


class Backoff:
    def __init__(
        self,
        initial: float = 10.0,
        maximum: float = 300.0,
        reset_after: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.initial, self.maximum, self.reset_after = initial, maximum, reset_after
        self.clock = clock
        self._entries: dict[Hashable, _Entry] = {}

    def in_backoff(self, key: Hashable, since: float | None = None) -> float:
        """Seconds left before `key` may be retried (0 when it may go now). `since` is when the
        failure happened (a container's finish time); the delay counts from it."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        until = entry.until if since is None else since + entry.delay
        return max(0.0, until - self.clock())

    def next(self, key: Hashable, since: float | None = None) -> float:
        """Record a retry of `key` now and return the delay before the following one."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry.last_update > self.reset_after + entry.delay:
            delay = self.initial
        else:
            delay = min(entry.delay * 2, self.maximum)
        start = now if since is None else since
        self._entries[key] = _Entry(delay, start + delay, now)
        return delay

    def reset_if_stable(self, key: Hashable, running_since: float) -> None:
        """A container that has run `reset_after` seconds is healthy again: forget its back-off."""
        entry = self._entries.get(key)
        if entry is not None and self.clock() - running_since >= self.reset_after:
            del self._entries[key]

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if isinstance(k, tuple) and k and k[0] == prefix]:
            del self._entries[key]
