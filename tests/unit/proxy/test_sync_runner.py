import asyncio
from collections.abc import Callable

from services.proxy.sync_runner import SyncRunner


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll instead of sleeping fixed times: CI machines are slow and shared."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_first_sync_is_full_and_a_burst_becomes_one_sync() -> None:
    calls: list[bool] = []

    async def sync(full: bool) -> None:
        calls.append(full)

    runner = SyncRunner(sync, min_interval=0.5, max_interval=60)
    task = asyncio.create_task(runner.run())
    await until(lambda: calls == [True])
    for _ in range(20):
        runner.request()
    await asyncio.sleep(0.05)
    assert calls == [True]  # still inside minSyncPeriod
    await until(lambda: len(calls) == 2)
    await asyncio.sleep(0.1)
    assert calls == [True, False]  # twenty requests, one partial sync
    task.cancel()


async def test_a_full_sync_comes_every_sync_period() -> None:
    calls: list[bool] = []

    async def sync(full: bool) -> None:
        calls.append(full)

    runner = SyncRunner(sync, min_interval=0.0, max_interval=0.1)
    task = asyncio.create_task(runner.run())
    await until(lambda: len(calls) >= 3)
    task.cancel()
    assert all(calls)


async def test_a_failed_sync_is_retried_in_full() -> None:
    calls: list[bool] = []

    async def sync(full: bool) -> None:
        calls.append(full)
        if len(calls) == 2:
            raise RuntimeError("restore failed")

    runner = SyncRunner(sync, min_interval=0.0, max_interval=60)
    task = asyncio.create_task(runner.run())
    await until(lambda: len(calls) == 1)
    runner.request()
    await until(lambda: len(calls) >= 3)  # retries wait at least a second
    task.cancel()
    assert calls[:3] == [True, False, True]
