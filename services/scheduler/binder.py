"""Asynchronous binding: the cycle assumes the pod and moves on; the Binding is POSTed here,
many at once, so the apiserver's write latency overlaps the next cycles instead of adding to
them. The outcome is reported back to the scheduler through callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from services.client.client import Client
from services.client.errors import APIStatusError
from services.scheduler.podinfo import PodInfo

Done = Callable[[PodInfo, str, float], Awaitable[None] | None]
Failed = Callable[[PodInfo, str, APIStatusError], Awaitable[None] | None]


class Binder:
    def __init__(self, client: Client, parallel: int, on_bound: Done, on_failed: Failed) -> None:
        self.client = client
        self.slots = asyncio.Semaphore(parallel)
        self.on_bound, self.on_failed = on_bound, on_failed
        self.tasks: set[asyncio.Task[None]] = set()

    async def bind(self, pod: PodInfo, node: str) -> None:
        """Start a binding; waits only when `parallel` bindings are already in flight."""
        await self.slots.acquire()
        task = asyncio.create_task(self._bind(pod, node), name=f"bind-{pod.key}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _bind(self, pod: PodInfo, node: str) -> None:
        started = time.monotonic()
        try:
            await self.client.bind(pod.name, pod.namespace, node, pod.uid)
        except APIStatusError as exc:
            self.slots.release()
            result = self.on_failed(pod, node, exc)
        else:
            self.slots.release()
            result = self.on_bound(pod, node, time.monotonic() - started)
        if asyncio.iscoroutine(result):
            await result

    async def wait(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
