"""The scheduling queue, as kube-scheduler's PriorityQueue.

- active: a heap ordered by priority (highest first), then creation time (oldest first);
- back-off: pods that failed, waiting 1 s doubling to 10 s per attempt before going active;
- unschedulable: pods no node fits, parked until an event that could help (a node added or
  updated, a pod deleted, a volume bound) moves them back, or until they have waited
  max_unschedulable_seconds.

A move request that arrives while a pod is being scheduled is remembered by cycle number, so a
pod that fails after the cluster changed under it goes to back-off rather than being parked
and missing the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, ValuesView
from dataclasses import dataclass

from services.scheduler.podinfo import PodInfo

ACTIVE, BACKOFF, UNSCHEDULABLE = "active", "backoff", "unschedulable"


@dataclass(eq=False)
class QueuedPod:
    info: PodInfo
    attempts: int = 0
    # When the pod entered the queue the first time (scheduling latency starts here).
    initial: float = 0.0
    # When it last failed (back-off counts from here).
    failed_at: float = 0.0
    where: str = ACTIVE
    seq: int = 0

    @property
    def key(self) -> str:
        return self.info.key


class ShutDownError(Exception):
    """The queue is closed; the scheduling loop should stop."""


class SchedulingQueue:
    def __init__(
        self,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_unschedulable: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.max_unschedulable = max_unschedulable
        self.clock = clock
        self.pods: dict[str, QueuedPod] = {}
        # The unschedulable ones, so the checks made on every pop and every move visit only
        # them, not a backlog of thousands of active pods.
        self._parked: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, QueuedPod]] = []
        self._backoff: list[tuple[float, int, QueuedPod]] = []
        self._seq = itertools.count()
        self.cycle = 0
        self.move_request_cycle = -1
        self._wakeup = asyncio.Event()
        self._closed = False

    # ------------------------------------------------------------------ sizes (metrics)

    def sizes(self) -> dict[str, int]:
        counts = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0}
        for queued in self.pods.values():
            counts[queued.where] += 1
        return counts

    def __len__(self) -> int:
        return len(self.pods)

    def parked(self) -> ValuesView[QueuedPod]:
        """The unschedulable pods (those a move_all would retry); a live view, not a copy."""
        return self._parked.values()

    # ------------------------------------------------------------------ internals

    def backoff_duration(self, queued: QueuedPod) -> float:
        exponent = max(queued.attempts - 1, 0)
        return float(min(self.initial_backoff * 2.0**exponent, self.max_backoff))

    def _push_active(self, queued: QueuedPod) -> None:
        self._parked.pop(queued.key, None)
        queued.where = ACTIVE
        queued.seq = next(self._seq)
        info = queued.info
        heapq.heappush(self._active, (-info.priority, info.creation, queued.seq, queued))
        self._wakeup.set()

    def _push_backoff(self, queued: QueuedPod) -> None:
        self._parked.pop(queued.key, None)
        queued.where = BACKOFF
        queued.seq = next(self._seq)
        heapq.heappush(self._backoff, (queued.failed_at + self.backoff_duration(queued), queued.seq, queued))
        self._wakeup.set()

    def _in_backoff(self, queued: QueuedPod) -> bool:
        return queued.attempts > 0 and self.clock() < queued.failed_at + self.backoff_duration(queued)

    def flush(self) -> None:
        """Move back-off pods whose time has come, and pods parked too long, to active."""
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, queued = heapq.heappop(self._backoff)
            if queued.where == BACKOFF and queued.seq == seq and self.pods.get(queued.key) is queued:
                self._push_active(queued)
        for queued in list(self._parked.values()):
            if now - queued.failed_at > self.max_unschedulable:
                self._requeue(queued)

    def _requeue(self, queued: QueuedPod) -> None:
        if self._in_backoff(queued):
            self._push_backoff(queued)
        else:
            self._push_active(queued)

    # ------------------------------------------------------------------ informer side

    def add(self, info: PodInfo) -> None:
        """A new pending pod (or one we did not know)."""
        queued = self.pods.get(info.key)
        if queued is not None:
            self.update(info)
            return
        queued = QueuedPod(info, initial=self.clock())
        self.pods[info.key] = queued
        self._push_active(queued)

    def update(self, info: PodInfo) -> None:
        """The pod changed: a parked pod gets another chance (its new spec may fit)."""
        queued = self.pods.get(info.key)
        if queued is None:
            self.add(info)
            return
        changed = queued.info.pod.spec != info.pod.spec or queued.info.labels != info.labels
        queued.info = info
        if queued.where == UNSCHEDULABLE and changed:
            self._requeue(queued)
        elif queued.where == ACTIVE:
            # Re-push so a changed priority takes effect; the stale heap entry is skipped.
            self._push_active(queued)

    def delete(self, key: str) -> None:
        self.pods.pop(key, None)
        self._parked.pop(key, None)

    def move_all(self, event: str = "") -> int:
        """Something that could make parked pods fit happened: retry them (after back-off)."""
        self.move_request_cycle = self.cycle
        parked = list(self._parked.values())
        for queued in parked:
            self._requeue(queued)
        return len(parked)

    # ------------------------------------------------------------------ scheduler side

    async def pop(self) -> QueuedPod:
        """The next pod to schedule: highest priority, oldest first. Waits while none is ready."""
        while True:
            if self._closed:
                raise ShutDownError
            self.flush()
            while self._active:
                _, _, seq, queued = heapq.heappop(self._active)
                if queued.where == ACTIVE and queued.seq == seq and self.pods.get(queued.key) is queued:
                    # Leaves the queue while it is being scheduled; the scheduler puts it back
                    # on failure (add_unschedulable / add_backoff).
                    del self.pods[queued.key]
                    queued.attempts += 1
                    self.cycle += 1
                    return queued
            self._wakeup.clear()
            timeout = None
            if self._backoff:
                timeout = max(self._backoff[0][0] - self.clock(), 0.001)
            if self._parked:
                timeout = min(timeout or 1.0, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def add_unschedulable(self, queued: QueuedPod, cycle: int) -> None:
        """No node fits. Parked, unless the cluster changed while it was being scheduled."""
        if queued.key in self.pods:
            return
        queued.failed_at = self.clock()
        self.pods[queued.key] = queued
        if self.move_request_cycle >= cycle:
            self._push_backoff(queued)
        else:
            queued.where = UNSCHEDULABLE
            self._parked[queued.key] = queued

    def add_backoff(self, queued: QueuedPod) -> None:
        """An error (a failed binding, an API error): retry after the back-off."""
        if queued.key in self.pods:
            return
        queued.failed_at = self.clock()
        self.pods[queued.key] = queued
        self._push_backoff(queued)

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()
