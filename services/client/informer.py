"""Informers: list, then watch from the list's resourceVersion, keeping a local cache that
controllers read instead of the apiserver (DESIGN.md principle 2).

A watch that ends or breaks resumes from the last resourceVersion seen; a resourceVersion
the server no longer has (Expired, Kubernetes' 410) triggers a relist whose differences are
delivered as add/update/delete, so handlers never miss a change. A periodic resync replays
every cached object as an update, so level-triggered controllers heal from their own bugs.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from google.protobuf.message import Message

from services.client.client import Client, Resource, kind_info
from services.client.errors import APIStatusError, ExpiredError

log = structlog.get_logger("informer")

Handler = Callable[..., Awaitable[None] | None]
IndexFunc = Callable[[Message], Iterable[str]]


def object_key(obj: Message) -> str:
    """namespace/name, or name for cluster-scoped objects (client-go's MetaNamespaceKeyFunc)."""
    meta = obj.metadata  # type: ignore[attr-defined]
    return f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name


def by_namespace(obj: Message) -> list[str]:
    return [obj.metadata.namespace]  # type: ignore[attr-defined]


@dataclass
class Handlers:
    on_add: Handler | None = None
    on_update: Handler | None = None  # (old, new)
    on_delete: Handler | None = None


class Store:
    """The informer's cache: objects by key, plus secondary indexes."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self.items: dict[str, Message] = {}
        self.indexers: dict[str, IndexFunc] = {"namespace": by_namespace, **(indexers or {})}
        self.indexes: dict[str, dict[str, set[str]]] = {name: {} for name in self.indexers}

    def get(self, key: str) -> Message | None:
        return self.items.get(key)

    def list(self) -> list[Message]:
        return list(self.items.values())

    def by_index(self, index: str, value: str) -> builtins.list[Message]:
        return [self.items[k] for k in sorted(self.indexes[index].get(value, ()))]

    def put(self, key: str, obj: Message) -> Message | None:
        old = self.items.get(key)
        if old is not None:
            self._unindex(key, old)
        self.items[key] = obj
        for name, func in self.indexers.items():
            for value in func(obj):
                self.indexes[name].setdefault(value, set()).add(key)
        return old

    def remove(self, key: str) -> Message | None:
        old = self.items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _unindex(self, key: str, obj: Message) -> None:
        for name, func in self.indexers.items():
            for value in func(obj):
                keys = self.indexes[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self.indexes[name][value]


@dataclass
class Informer:
    client: Client
    resource: Resource
    namespace: str = ""
    label_selector: str = ""
    field_selector: str = ""
    resync_seconds: float = 0.0
    indexers: dict[str, IndexFunc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.info = kind_info(self.resource)
        self.store = Store(self.indexers)
        self.handlers: list[Handlers] = []
        self.synced = asyncio.Event()
        self.resource_version = ""
        # When (time.monotonic()) the current unbroken watch began; None while the watch is
        # down. A consumer that judges others by their silence (the node lifecycle
        # controller) counts it only from here: while its own watch was down it could not
        # have heard anyone.
        self.watching_since: float | None = None
        self._task: asyncio.Task[None] | None = None

    def add_handlers(
        self,
        on_add: Handler | None = None,
        on_update: Handler | None = None,
        on_delete: Handler | None = None,
    ) -> None:
        self.handlers.append(Handlers(on_add, on_update, on_delete))

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"informer-{self.info.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def _emit(self, kind: str, *args: Any) -> None:
        for handlers in self.handlers:
            handler = getattr(handlers, kind)
            if handler is None:
                continue
            try:
                result = handler(*args)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("informer handler failed", resource=self.info.plural, handler=kind)

    async def run(self) -> None:
        backoff = 0.2
        resync = asyncio.create_task(self._resync_loop()) if self.resync_seconds > 0 else None
        try:
            while True:
                try:
                    if self.watching_since is None:
                        self.watching_since = time.monotonic()
                    if not self.resource_version:
                        await self._relist()
                    await self._watch()
                    backoff = 0.2
                except ExpiredError:
                    self.resource_version = ""
                    self.watching_since = None
                except APIStatusError as exc:
                    self.watching_since = None
                    log.info("informer watch interrupted", resource=self.info.plural, error=str(exc))
                    await asyncio.sleep(backoff * (1 + random.random()))
                    backoff = min(backoff * 2, 30.0)
        finally:
            if resync is not None:
                resync.cancel()

    async def _relist(self) -> None:
        listed = await self.client.list(
            self.info, self.namespace, label_selector=self.label_selector, field_selector=self.field_selector
        )
        fresh = {object_key(o): o for o in listed.items}
        for key in [k for k in self.store.items if k not in fresh]:
            old = self.store.remove(key)
            await self._emit("on_delete", old)
        for key, obj in fresh.items():
            old = self.store.put(key, obj)
            if old is None:
                await self._emit("on_add", obj)
            elif old.metadata.resource_version != obj.metadata.resource_version:  # type: ignore[attr-defined]
                await self._emit("on_update", old, obj)
        self.resource_version = listed.resource_version
        self.synced.set()

    async def _watch(self) -> None:
        async for event in self.client.watch(
            self.info,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=self.resource_version,
            bookmarks=True,
        ):
            obj = event.obj
            self.resource_version = obj.metadata.resource_version  # type: ignore[attr-defined]
            if event.type == "BOOKMARK":
                continue
            key = object_key(obj)
            if event.type == "DELETED":
                old = self.store.remove(key)
                await self._emit("on_delete", old if old is not None else obj)
            else:
                old = self.store.put(key, obj)
                if old is None:
                    await self._emit("on_add", obj)
                else:
                    await self._emit("on_update", old, obj)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            for obj in self.store.list():
                await self._emit("on_update", obj, obj)
