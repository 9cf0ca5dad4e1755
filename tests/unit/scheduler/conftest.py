"""An in-process apiserver with the Priority admission plugin, a client, and a running scheduler."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from services.apiserver.server import APIServer
from services.client.client import Client
from services.scheduler.config import SchedulerConfig
from services.scheduler.scheduler import Scheduler
from tests.unit.apiserver.conftest import config_for


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServer]:
    # Priority admission is on by default.
    apiserver = APIServer(config_for(tmp_path))
    await apiserver.start()
    yield apiserver
    await apiserver.stop(grace=0)


@pytest.fixture
async def client(server: APIServer) -> AsyncIterator[Client]:
    api = Client.connect(f"127.0.0.1:{server.port}", timeout=10)
    yield api
    await api.close()


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
