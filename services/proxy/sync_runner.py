"""When to sync (Kubernetes' BoundedFrequencyRunner): at most once per minSyncPeriod however
many changes arrive (a burst of changes becomes one sync), at least once per syncPeriod (a
full resync that heals anything changed behind our back), and a failed sync is retried as a
full one after minSyncPeriod (at least a second, so a persistent failure cannot spin)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("proxy.sync")

SyncFunc = Callable[[bool], Awaitable[None]]  # argument: full


class SyncRunner:
    def __init__(self, sync: SyncFunc, min_interval: float, max_interval: float) -> None:
        self.sync = sync
        self.min_interval = min_interval
        self.max_interval = max_interval
        self._wake = asyncio.Event()
        self._full_pending = True  # the first sync is always full
        self._last_run = float("-inf")
        self._last_full = time.monotonic()
        self.syncs = 0

    def request(self) -> None:
        self._wake.set()

    def request_full(self) -> None:
        self._full_pending = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            until_full = self._last_full + self.max_interval - now
            if not self._full_pending and until_full > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), until_full)
            delay = self._last_run + self.min_interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._wake.clear()
            full = self._full_pending or time.monotonic() - self._last_full >= self.max_interval
            self._full_pending = False
            self._last_run = time.monotonic()
            try:
                await self.sync(full)
            except Exception:
                log.exception("sync failed; retrying with a full sync")
                self._full_pending = True
                await asyncio.sleep(max(self.min_interval, 1.0))
                continue
            self.syncs += 1
            if full:
                self._last_full = self._last_run
