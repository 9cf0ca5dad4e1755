"""A rate-limited work queue of keys, as client-go's: a key is queued at most once however
often it is added, a key being processed is never handed to a second worker (it is requeued
once the first finishes), and failures come back after an exponential back-off."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

KeyHandler = Callable[[Hashable], Awaitable[None]]


class ShutDownError(Exception):
    """The queue is shut down; workers should exit."""


class RateLimiter:
    """Per-key exponential back-off: base * 2^failures, capped."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base, self.cap = base, cap
        self.failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        count = self.failures.get(key, 0)
        self.failures[key] = count + 1
        return float(min(self.base * 2.0**count, self.cap))

    def forget(self, key: Hashable) -> None:
        self.failures.pop(key, None)

    def retries(self, key: Hashable) -> int:
        return self.failures.get(key, 0)


class WorkQueue:
    def __init__(self, rate_limiter: RateLimiter | None = None) -> None:
        self.rate_limiter = rate_limiter or RateLimiter()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: Hashable) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._notify()

    def _notify(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def add_after(self, key: Hashable, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self.add(key)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def add_rate_limited(self, key: Hashable) -> None:
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: Hashable) -> None:
        self.rate_limiter.forget(key)

    def retries(self, key: Hashable) -> int:
        return self.rate_limiter.retries(key)

    async def get(self) -> Hashable:
        while not self._queue:
            if self._shutting_down:
                raise ShutDownError
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._notify()

    async def shutdown(self) -> None:
        self._shutting_down = True
        for handle in list(self._timers):
            handle.cancel()
        self._timers.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down


async def run_workers(queue: WorkQueue, count: int, handle: KeyHandler) -> None:
    """Run `count` workers until the queue shuts down; a failing key is requeued with back-off."""

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDownError:
                return
            try:
                await handle(key)
            except Exception:
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
            finally:
                queue.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(count)]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
