"""An event recorder, as client-go's record.EventRecorder: components report what they did
or failed to do as Event objects a user reads with `describe`.

Recording never blocks or fails the caller: events go to a bounded queue drained by a few
background writers, several writes in flight at once (as client-go's events broadcaster, which
writes each event from its own goroutine), so a component recording an event per object keeps
up with an apiserver whose writes wait for a commit. When the apiserver is slower still, events
are dropped (logged at most every few seconds with the count, so dropping costs nothing). Each
event is stamped when it is recorded, not when it is written. Repeats of the same (object,
type, reason, message) are aggregated into one Event whose count and lastTimestamp grow, so a
controller retrying every second does not flood the store; the repeats of one Event are written
one after the other, in order."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

import structlog
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.errors import APIStatusError, ConflictError, NotFoundError
from services.machinery.kinds import REGISTRY, UnknownKindError

log = structlog.get_logger("events")

NORMAL = "Normal"
WARNING = "Warning"
_CACHE_SIZE = 4096
# Writes in flight at most (client-go's events broadcaster does not bound them at all); as many
# as the scheduler's bindings in flight, each of which ends in a Scheduled Event. Writers are
# started only as the backlog grows, so a component that records little keeps one.
DEFAULT_PARALLEL_WRITES = 64
# At most one "events dropped" log line per this many seconds.
DROP_LOG_SECONDS = 10.0

_Key = tuple[str, ...]


def _timestamp(nanos: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(nanos // 1000 * 1000)
    return stamp


def reference(obj: Message) -> core_pb2.ObjectReference:
    """The ObjectReference of any registered kind (involvedObject of its events)."""
    meta = obj.metadata  # type: ignore[attr-defined]
    ref = core_pb2.ObjectReference(
        name=meta.name, namespace=meta.namespace, uid=meta.uid, resource_version=meta.resource_version
    )
    with contextlib.suppress(UnknownKindError):
        info = REGISTRY.by_message(obj)
        ref.kind, ref.api_version = info.kind, info.api_version
    return ref


@dataclass(frozen=True, slots=True)
class _Pending:
    ref: core_pb2.ObjectReference
    type: str
    reason: str
    message: str
    at: int  # time.time_ns() when recorded

    @property
    def key(self) -> _Key:
        ref = self.ref
        return (ref.namespace, ref.kind, ref.name, ref.uid, self.type, self.reason, self.message)


class EventRecorder:
    def __init__(
        self,
        client: Client,
        component: str,
        host: str = "",
        queue_size: int = 1000,
        parallel: int = DEFAULT_PARALLEL_WRITES,
    ) -> None:
        if parallel < 1:
            raise ValueError(f"parallel must be at least 1, got {parallel}")
        self.client = client
        self.component = component
        self.host = host
        self.parallel = parallel
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(queue_size)
        self._cache: OrderedDict[_Key, core_pb2.Event] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = 0  # writers waiting for an event
        # Keys being written -> repeats recorded meanwhile, written next by the same writer.
        self._writing: dict[_Key, deque[_Pending]] = {}
        self.dropped = 0
        self._dropped_unlogged = 0
        self._drop_logged_at = -DROP_LOG_SECONDS

    def event(self, obj: Message | core_pb2.ObjectReference, type_: str, reason: str, message: str) -> None:
        """Record an event about obj (an API object or a reference); never blocks."""
        ref = obj if isinstance(obj, core_pb2.ObjectReference) else reference(obj)
        try:
            self._queue.put_nowait(_Pending(ref, type_, reason, message, time.time_ns()))
        except asyncio.QueueFull:
            self._dropped(reason, ref.name)
            return
        if self._tasks and self._tasks[0].done():  # cancelled, or from an event loop now gone
            self._tasks = [t for t in self._tasks if not t.done()]
        if len(self._tasks) < self.parallel and self._queue.qsize() > self._idle:
            self._tasks.append(asyncio.get_running_loop().create_task(self._drain(), name="event-recorder"))

    @property
    def writers(self) -> int:
        """Writer tasks started: one per event of backlog, up to `parallel`."""
        return len(self._tasks)

    def _dropped(self, reason: str, name: str) -> None:
        self.dropped += 1
        self._dropped_unlogged += 1
        now = time.monotonic()
        if now - self._drop_logged_at >= DROP_LOG_SECONDS:
            log.warning(
                "events dropped: queue full", dropped=self._dropped_unlogged, reason=reason, object=name
            )
            self._drop_logged_at, self._dropped_unlogged = now, 0

    async def flush(self) -> None:
        """Wait until every queued event is written (tests, shutdown)."""
        if any(not t.done() for t in self._tasks):
            await self._queue.join()

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _drain(self) -> None:
        while True:
            self._idle += 1
            try:
                pending = await self._queue.get()
            finally:
                self._idle -= 1
            key = pending.key
            repeats = self._writing.get(key)
            if repeats is not None:
                # Another writer is on this Event: it writes the repeat after its own write.
                repeats.append(pending)
                continue
            repeats = self._writing[key] = deque()
            try:
                while True:
                    await self._write_one(key, pending)
                    if not repeats:
                        break
                    pending = repeats.popleft()
            finally:
                del self._writing[key]
                # Repeats left behind by a cancelled writer (close) are dropped, and counted
                # as done so a later flush() does not wait for them.
                for _ in repeats:
                    self._queue.task_done()

    async def _write_one(self, key: _Key, pending: _Pending) -> None:
        try:
            await self._write(key, pending)
        except APIStatusError as exc:
            log.info("event not written", reason=pending.reason, error=str(exc))
        except Exception:
            log.exception("event recorder failed")
        finally:
            self._queue.task_done()

    async def _write(self, key: _Key, pending: _Pending) -> None:
        ref = pending.ref
        now = _timestamp(pending.at)
        cached = self._cache.get(key)
        if cached is not None:
            updated = core_pb2.Event()
            updated.CopyFrom(cached)
            updated.count += 1
            updated.last_timestamp.CopyFrom(now)
            try:
                self._remember(key, await self.client.update(updated))
                return
            except (ConflictError, NotFoundError):
                self._cache.pop(key, None)
        event = core_pb2.Event(reason=pending.reason, message=pending.message, type=pending.type, count=1)
        event.metadata.name = f"{ref.name}.{time.time_ns():x}"
        event.metadata.namespace = ref.namespace or "default"
        event.involved_object.CopyFrom(ref)
        event.source.component, event.source.host = self.component, self.host
        event.reporting_component = self.component
        event.first_timestamp.CopyFrom(now)
        event.last_timestamp.CopyFrom(now)
        self._remember(key, await self.client.create(event))

    def _remember(self, key: _Key, event: core_pb2.Event) -> None:
        self._cache[key] = event
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
