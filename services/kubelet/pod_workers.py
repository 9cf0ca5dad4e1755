"""One worker per pod: an asyncio task that runs the pod's sync whenever it is woken (an API
change, a container state change, a probe result) and otherwise every sync period, or
sooner when the last sync asked to be retried (back-off expiry, missing object). Syncs of
one pod never overlap; different pods sync in parallel. A sync that returns DONE (the pod
was torn down) ends its worker."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Final

from services.kubelet.metrics import POD_SYNC_SECONDS
from services.machinery.logs import get_logger

log = get_logger(__name__)


class _Done:
    pass


DONE: Final = _Done()
SyncFunc = Callable[[str], Awaitable[float | _Done | None]]
ERROR_RETRY_MAX = 10.0


class PodWorkers:
    def __init__(self, sync: SyncFunc, period: float) -> None:
        self.sync = sync
        self.period = period
        self._events: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def __contains__(self, uid: str) -> bool:
        return uid in self._tasks

    def uids(self) -> list[str]:
        return list(self._tasks)

    def wake(self, uid: str) -> None:
        if self._closed:
            return
        event = self._events.get(uid)
        if event is None:
            event = self._events[uid] = asyncio.Event()
            self._tasks[uid] = asyncio.get_running_loop().create_task(
                self._run(uid, event), name=f"pod-{uid}"
            )
        event.set()

    async def _run(self, uid: str, event: asyncio.Event) -> None:
        errors = 0
        loop = asyncio.get_running_loop()
        try:
            while True:
                event.clear()
                started = loop.time()
                try:
                    result = await self.sync(uid)
                    errors = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    errors += 1
                    log.warning("pod sync failed", uid=uid, error=str(exc) or type(exc).__name__)
                    result = min(ERROR_RETRY_MAX, 0.5 * 2**errors)
                finally:
                    POD_SYNC_SECONDS.observe(loop.time() - started)
                if isinstance(result, _Done):
                    return
                delay = self.period * (1 + 0.1 * random.random()) if result is None else max(result, 0.05)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), delay)
        finally:
            if self._events.get(uid) is event:
                del self._events[uid]
                self._tasks.pop(uid, None)

    async def stop(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
