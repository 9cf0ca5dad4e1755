"""An event recorder, as client-go's record.EventRecorder: components report what they did
or failed to do as Event objects a user reads with `describe`.

Recording never blocks or fails the caller: events go to a bounded queue drained by one
background task, and are dropped (with a log line) when the apiserver is slow. Repeats of the
same (object, type, reason, message) are aggregated into one Event whose count and
lastTimestamp grow, so a controller retrying every second does not flood the store."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
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


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns() // 1000 * 1000)
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


@dataclass(frozen=True)
class _Pending:
    ref: core_pb2.ObjectReference
    type: str
    reason: str
    message: str


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str = "", queue_size: int = 1000) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(queue_size)
        self._cache: OrderedDict[tuple[str, ...], core_pb2.Event] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def event(self, obj: Message | core_pb2.ObjectReference, type_: str, reason: str, message: str) -> None:
        """Record an event about obj (an API object or a reference); never blocks."""
        ref = obj if isinstance(obj, core_pb2.ObjectReference) else reference(obj)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="event-recorder")
        try:
            self._queue.put_nowait(_Pending(ref, type_, reason, message))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event dropped: queue full", reason=reason, object=ref.name)

    async def flush(self) -> None:
        """Wait until every queued event is written (tests, shutdown)."""
        if self._task is not None and not self._task.done():
            await self._queue.join()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _drain(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                await self._write(pending)
            except APIStatusError as exc:
                log.info("event not written", reason=pending.reason, error=str(exc))
            except Exception:
                log.exception("event recorder failed")
            finally:
                self._queue.task_done()

    async def _write(self, pending: _Pending) -> None:
        ref = pending.ref
        key = (ref.namespace, ref.kind, ref.name, ref.uid, pending.type, pending.reason, pending.message)
        now = _now()
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

    def _remember(self, key: tuple[str, ...], event: core_pb2.Event) -> None:
        self._cache[key] = event
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
