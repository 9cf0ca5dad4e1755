"""The watch cache: one storage watch per kind feeds an in-memory copy of every object and a
window of recent events, from which the apiserver serves lists and fans out client watches.

Without it every client watch would be a storage watch and every list a full scan; with it a
thousand watchers cost one storage watch, and a list is a walk over a dict.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import structlog
from google.protobuf.message import Message

from services.apiserver.storage.interface import EventType, KeyValue, Storage, StoreEvent
from services.machinery.fields import FieldSelector
from services.machinery.kinds import KindInfo
from services.machinery.labels import Selector

log = structlog.get_logger("watchcache")

DEFAULT_CAPACITY = 10_000
WATCHER_QUEUE_LIMIT = 10_000
# Events a watcher takes from its queue at once.
MAX_BATCH = 256


@dataclass(frozen=True)
class CacheEvent:
    type: str  # ADDED, MODIFIED, DELETED
    obj: Message
    prev: Message | None
    revision: int


class TooOldError(Exception):
    """The requested revision is older than the cache's window."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class WatchClosedError(Exception):
    """The cache dropped the watcher (too slow, or the cache restarted): re-watch."""


@dataclass(frozen=True)
class Filter:
    namespace: str
    labels: Selector
    fields: FieldSelector
    info: KindInfo

    def matches(self, obj: Message) -> bool:
        meta = obj.metadata  # type: ignore[attr-defined]
        if self.namespace and meta.namespace != self.namespace:
            return False
        if not self.labels.matches(meta.labels):
            return False
        return self.fields.is_empty() or self.fields.matches(self.info.field_values(obj))


class _Watcher:
    def __init__(self, flt: Filter) -> None:
        self.filter = flt
        self.queue: asyncio.Queue[CacheEvent | None] = asyncio.Queue()
        self.closed = False

    def offer(self, event: CacheEvent) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= WATCHER_QUEUE_LIMIT:
            self.close()
            return
        self.queue.put_nowait(event)

    def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)


class WatchCache:
    def __init__(
        self,
        info: KindInfo,
        storage: Storage,
        prefix: str,
        decode: Callable[[KeyValue], Message],
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.info = info
        self.storage = storage
        self.prefix = prefix
        self.decode = decode
        self.objects: dict[str, Message] = {}
        self.events: deque[CacheEvent] = deque(maxlen=capacity)
        self.revision = 0
        # Events at revisions above this are in `events`; older ones fell out of the window.
        self.window_start = 0
        self._watchers: set[_Watcher] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        # Consistent reads waiting for the cache to reach a revision: (revision, future).
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def start(self) -> None:
        await self._fill()
        self._task = asyncio.create_task(self._run(), name=f"watchcache-{self.info.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for watcher in list(self._watchers):
            watcher.close()

    async def _fill(self) -> None:
        listed = await self.storage.list(self.prefix)
        self.objects = {kv.key: self.decode(kv) for kv in listed.items}
        self.events.clear()
        self.revision = listed.revision
        self.window_start = listed.revision
        self._ready.set()

    async def _run(self) -> None:
        while True:
            try:
                async for event in self.storage.watch(self.prefix, self.revision + 1, progress=True):
                    if event.type is EventType.PROGRESS:
                        self._advance(event.revision)
                    else:
                        self._apply(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("watch cache restarting", kind=self.info.kind, error=str(exc))
                for watcher in list(self._watchers):
                    watcher.close()
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    await self._fill()

    def _advance(self, revision: int) -> None:
        """The cache has seen every change up to `revision`: wake the reads waiting for it."""
        self.revision = max(self.revision, revision)
        if not self._waiters:
            return
        still = []
        for wanted, future in self._waiters:
            if wanted <= self.revision:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((wanted, future))
        self._waiters = still

    async def wait_fresh(self, revision: int, timeout: float) -> bool:
        """Wait until the cache reflects the store at `revision` (a consistent read from the cache,
        as Kubernetes' ConsistentListFromCache); False if the storage cannot say or it took too
        long, and the caller reads the store."""
        if self.revision >= revision:
            return True
        if not self.storage.request_progress(self.prefix):
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:
            self._waiters = [(r, f) for r, f in self._waiters if f is not future]
        return True

    def _apply(self, event: StoreEvent) -> None:
        key = event.kv.key
        obj = self.decode(event.kv)
        prev = self.objects.get(key)
        if event.type is EventType.DELETE:
            self.objects.pop(key, None)
            kind = "DELETED"
        else:
            self.objects[key] = obj
            kind = "ADDED" if prev is None else "MODIFIED"
        cached = CacheEvent(kind, obj, prev, event.revision)
        if len(self.events) == self.events.maxlen:
            self.window_start = self.events[0].revision
        self.events.append(cached)
        for watcher in list(self._watchers):
            watcher.offer(cached)
        self._advance(event.revision)

    def list(self, flt: Filter) -> tuple[list[Message], int]:
        if flt.namespace:
            start = f"{self.prefix}{flt.namespace}/"
            items = [o for k, o in self.objects.items() if k.startswith(start) and flt.matches(o)]
        else:
            items = [o for o in self.objects.values() if flt.matches(o)]
        items.sort(key=lambda o: (o.metadata.namespace, o.metadata.name))  # type: ignore[attr-defined]
        return items, self.revision

    async def watch(self, flt: Filter, after: int | None) -> AsyncIterator[builtins.list[CacheEvent]]:
        """Events after revision `after`; None means "the current state as ADDED, then changes".

        They come in batches: the events already queued when the watcher is served go together,
        at most MAX_BATCH of them, so a busy watch costs one wake-up (and one message) for many
        events."""
        await self._ready.wait()
        watcher = _Watcher(flt)
        if after is None:
            items, revision = self.list(flt)
            backlog = [CacheEvent("ADDED", o, None, revision) for o in items]
        else:
            if after < self.window_start:
                raise TooOldError(after, self.window_start)
            backlog = [e for e in self.events if e.revision > after]
            # The client may know a newer revision than this kind's last change (it is global).
            revision = max(self.revision, after)
        self._watchers.add(watcher)
        try:
            for start in range(0, len(backlog), MAX_BATCH):
                batch = self._translate_all(backlog[start : start + MAX_BATCH], flt, 0)
                if batch:
                    yield batch
            while True:
                # Wait for one event, then take every event already queued behind it.
                ready = [await watcher.queue.get()]
                while len(ready) < MAX_BATCH and not watcher.queue.empty():
                    ready.append(watcher.queue.get_nowait())
                closed = None in ready
                events = [e for e in ready if e is not None]
                batch = self._translate_all(events, flt, revision)
                if batch:
                    yield batch
                if closed:
                    raise WatchClosedError(
                        "watch closed by the server; re-watch from the last resourceVersion"
                    )
        finally:
            self._watchers.discard(watcher)

    @classmethod
    def _translate_all(
        cls, events: builtins.list[CacheEvent], flt: Filter, after: int
    ) -> builtins.list[CacheEvent]:
        """The events after revision `after` as this watcher's filter sees them."""
        out = []
        for event in events:
            if event.revision > after:
                translated = cls._translate(event, flt)
                if translated is not None:
                    out.append(translated)
        return out

    @staticmethod
    def _translate(event: CacheEvent, flt: Filter) -> CacheEvent | None:
        """Selectors apply to both sides of a change: leaving the selection is a DELETED."""
        now = event.type != "DELETED" and flt.matches(event.obj)
        before = event.prev is not None and flt.matches(event.prev)
        if event.type == "DELETED":
            return event if flt.matches(event.obj) else None
        if now and before:
            return event
        if now:
            return CacheEvent("ADDED", event.obj, event.prev, event.revision)
        if before:
            return CacheEvent("DELETED", event.obj, event.prev, event.revision)
        return None

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)
