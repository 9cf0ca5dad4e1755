import asyncio

import pytest

from services.client.workqueue import RateLimiter, ShutDownError, WorkQueue, run_workers


async def test_keys_are_deduplicated_until_taken() -> None:
    queue = WorkQueue()
    for key in ("a", "b", "a", "a"):
        queue.add(key)
    assert len(queue) == 2
    assert await queue.get() == "a"
    assert await queue.get() == "b"


async def test_a_key_in_process_is_requeued_only_after_done() -> None:
    queue = WorkQueue()
    queue.add("k")
    key = await queue.get()
    queue.add("k")
    assert len(queue) == 0  # not handed to a second worker while processing
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "k"


async def test_rate_limited_backoff_doubles_and_forget_resets() -> None:
    limiter = RateLimiter(base=0.01, cap=0.05)
    assert [limiter.when("x") for _ in range(4)] == [0.01, 0.02, 0.04, 0.05]
    limiter.forget("x")
    assert limiter.when("x") == 0.01
    queue = WorkQueue(RateLimiter(base=0.05))
    loop = asyncio.get_running_loop()
    start = loop.time()
    queue.add_rate_limited("slow")
    assert await asyncio.wait_for(queue.get(), 2) == "slow"
    assert loop.time() - start >= 0.04


async def test_shutdown_wakes_waiting_workers() -> None:
    queue = WorkQueue()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    await queue.shutdown()
    with pytest.raises(ShutDownError):
        await waiter
    queue.add("ignored")
    assert len(queue) == 0


async def test_workers_retry_failures() -> None:
    queue = WorkQueue(RateLimiter(base=0.001))
    attempts: dict[str, int] = {}

    async def handle(key: object) -> None:
        attempts[str(key)] = attempts.get(str(key), 0) + 1
        if key == "flaky" and attempts["flaky"] < 3:
            raise RuntimeError("try again")

    queue.add("flaky")
    queue.add("steady")
    workers = asyncio.create_task(run_workers(queue, 2, handle))
    for _ in range(200):
        if attempts.get("flaky") == 3:
            break
        await asyncio.sleep(0.01)
    await queue.shutdown()
    await asyncio.wait_for(workers, 2)
    assert attempts == {"flaky": 3, "steady": 1}
    assert queue.retries("flaky") == 0
