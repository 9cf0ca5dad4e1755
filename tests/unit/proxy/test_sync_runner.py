import asyncio

from services.proxy.sync_runner import SyncRunner


async def test_first_sync_is_full_and_a_burst_becomes_one_sync() -> None:
    calls: list[bool] = []

    async def sync(full: bool) -> None:
        calls.append(full)

    runner = SyncRunner(sync, min_interval=0.2, max_interval=60)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.05)
    assert calls == [True]
    for _ in range(20):
        runner.request()
    await asyncio.sleep(0.1)
    assert calls == [True]  # still inside minSyncPeriod
    await asyncio.sleep(0.2)
    assert calls == [True, False]
    task.cancel()


async def test_a_full_sync_comes_every_sync_period() -> None:
    calls: list[bool] = []

    async def sync(full: bool) -> None:
        calls.append(full)

    runner = SyncRunner(sync, min_interval=0.0, max_interval=0.1)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.35)
    task.cancel()
    assert len(calls) >= 3 and all(calls)


async def test_a_failed_sync_is_retried_in_full() -> None:
    calls: list[bool] = []

    async def sync(full: bool) -> None:
        calls.append(full)
        if len(calls) == 2:
            raise RuntimeError("restore failed")

    runner = SyncRunner(sync, min_interval=0.0, max_interval=60)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.05)
    runner.request()
    await asyncio.sleep(1.2)  # retries wait at least a second
    task.cancel()
    assert calls[:3] == [True, False, True]
