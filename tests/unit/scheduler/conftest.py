"""An in-process apiserver (Priority admission is on by default), a client, and a running scheduler."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from services.client.client import Client
from services.scheduler.config import SchedulerConfig
from services.scheduler.scheduler import Scheduler
from tests.unit.apiserver.conftest import client, server

__all__ = ["client", "fast_config", "server", "start_scheduler"]


def fast_config(**overrides: Any) -> SchedulerConfig:
    config = SchedulerConfig(initial_backoff_seconds=0.05, max_backoff_seconds=0.2)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


StartScheduler = Callable[..., Awaitable[Scheduler]]


@pytest.fixture
async def start_scheduler(client: Client) -> AsyncIterator[StartScheduler]:
    tasks: list[asyncio.Task[None]] = []

    async def start(config: SchedulerConfig | None = None) -> Scheduler:
        scheduler = Scheduler(client, config or fast_config())
        task = asyncio.create_task(scheduler.run())
        tasks.append(task)
        await asyncio.wait_for(scheduler.informers_synced(), 10)
        return scheduler

    yield start
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(
    predicate: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(interval)
