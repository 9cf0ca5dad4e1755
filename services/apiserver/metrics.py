"""Prometheus metrics of the apiserver (DESIGN.md section 9)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from services.apiserver.storage.interface import KeyValue, ListResult, Storage, StoreEvent

REQUEST_LATENCY = Histogram(
    "pinnace_apiserver_request_duration_seconds",
    "API request latency by verb, resource and gRPC code",
    ["verb", "resource", "code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INFLIGHT = Gauge("pinnace_apiserver_inflight_requests", "Requests being served", ["kind"])
WATCHERS = Gauge("pinnace_apiserver_watchers", "Open client watches", ["resource"])
WATCH_EVENTS = Counter("pinnace_apiserver_watch_events_total", "Watch events sent", ["resource", "type"])
STORAGE_LATENCY = Histogram(
    "pinnace_apiserver_storage_duration_seconds",
    "Storage operation latency",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)


@lru_cache(maxsize=8192)
def child(metric: MetricWrapperBase, *values: str) -> Any:
    """metric.labels(*values), remembered: labels() checks and locks on every call, and the
    apiserver asks for the same few children thousands of times a second."""
    return metric.labels(*values)


class MeteredStorage(Storage):
    """Times every storage operation; otherwise a transparent wrapper."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    async def create(self, key: str, value: bytes) -> KeyValue:
        with child(STORAGE_LATENCY, "create").time():
            return await self.inner.create(key, value)

    async def get(self, key: str) -> KeyValue | None:
        with child(STORAGE_LATENCY, "get").time():
            return await self.inner.get(key)

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> ListResult:
        with child(STORAGE_LATENCY, "list").time():
            return await self.inner.list(prefix, revision=revision, limit=limit, start_after=start_after)

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        with child(STORAGE_LATENCY, "update").time():
            return await self.inner.update(key, value, expected_revision)

    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        with child(STORAGE_LATENCY, "delete").time():
            return await self.inner.delete(key, expected_revision)

    def watch(self, prefix: str, start_revision: int, *, progress: bool = False) -> AsyncIterator[StoreEvent]:
        return self.inner.watch(prefix, start_revision, progress=progress)

    def request_progress(self, prefix: str) -> bool:
        return self.inner.request_progress(prefix)

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def compacted_revision(self) -> int:
        return await self.inner.compacted_revision()

    async def compact(self, revision: int) -> None:
        start = time.perf_counter()
        await self.inner.compact(revision)
        child(STORAGE_LATENCY, "compact").observe(time.perf_counter() - start)

    async def close(self) -> None:
        await self.inner.close()
