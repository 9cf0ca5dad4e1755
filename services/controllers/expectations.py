"""Expectations, as client-go's ControllerExpectations/UIDTrackingControllerExpectations.

A controller that creates or deletes pods must not act again on the same owner until its
informer has seen the results: a slow watch would otherwise make it count the old pods and
create (or delete) a second batch. Expectations record what is in flight; a sync proceeds only
once they are met, or after a timeout in case an event was lost (the cache then heals by
relisting)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expected:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    stamp: float = field(default_factory=time.monotonic)


class Expectations:
    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self.timeout = timeout
        self._by_owner: dict[str, _Expected] = {}

    def satisfied(self, owner: str) -> bool:
        expected = self._by_owner.get(owner)
        if expected is None:
            return True
        if expected.adds <= 0 and not expected.deletes:
            return True
        return time.monotonic() - expected.stamp > self.timeout

    def expect_creations(self, owner: str, count: int) -> None:
        self._by_owner[owner] = _Expected(adds=count)

    def expect_deletions(self, owner: str, pod_keys: list[str]) -> None:
        self._by_owner[owner] = _Expected(deletes=set(pod_keys))

    def creation_observed(self, owner: str) -> None:
        expected = self._by_owner.get(owner)
        if expected is not None and expected.adds > 0:
            expected.adds -= 1

    def deletion_observed(self, owner: str, pod_key: str) -> None:
        expected = self._by_owner.get(owner)
        if expected is not None:
            expected.deletes.discard(pod_key)

    def forget(self, owner: str) -> None:
        self._by_owner.pop(owner, None)

    def pending(self, owner: str) -> tuple[int, int]:
        expected = self._by_owner.get(owner)
        return (expected.adds, len(expected.deletes)) if expected is not None else (0, 0)
