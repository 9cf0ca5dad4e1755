"""The scheduling queue: order, back-off, parking and moving."""

from __future__ import annotations

import asyncio

from services.scheduler.queue import ACTIVE, BACKOFF, UNSCHEDULABLE, SchedulingQueue
from tests.unit.scheduler.helpers import info, make_pod


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_priority_then_creation_order() -> None:
    queue = SchedulingQueue()
    queue.add(info(make_pod("old-low", priority=0, created=1)))
    queue.add(info(make_pod("new-high", priority=10, created=3)))
    queue.add(info(make_pod("old-high", priority=10, created=2)))
    order = [(await queue.pop()).info.name for _ in range(3)]
    assert order == ["old-high", "new-high", "old-low"]


async def test_backoff_doubles_from_one_to_ten_seconds() -> None:
    queue = SchedulingQueue(clock=Clock())
    queued = type("Q", (), {})()
    durations = []
    for attempts in range(1, 7):
        queued.attempts = attempts
        durations.append(queue.backoff_duration(queued))  # type: ignore[arg-type]
    assert durations == [1, 2, 4, 8, 10, 10]


async def test_failed_pod_waits_out_its_backoff() -> None:
    clock = Clock()
    queue = SchedulingQueue(clock=clock)
    queue.add(info(make_pod("p")))
    queued = await queue.pop()
    queue.add_backoff(queued)
    assert queue.sizes() == {ACTIVE: 0, BACKOFF: 1, UNSCHEDULABLE: 0}
    clock.now += 0.5
    queue.flush()
    assert queue.sizes()[BACKOFF] == 1
    clock.now += 0.6
    assert (await asyncio.wait_for(queue.pop(), 1)).info.name == "p"


async def test_unschedulable_pods_are_parked_until_something_changes() -> None:
    clock = Clock()
    queue = SchedulingQueue(clock=clock)
    queue.add(info(make_pod("p")))
    queued = await queue.pop()
    queue.add_unschedulable(queued, queue.cycle)
    assert queue.sizes()[UNSCHEDULABLE] == 1
    clock.now += 30
    queue.flush()
    assert queue.sizes()[UNSCHEDULABLE] == 1
    assert queue.move_all("NodeAdd") == 1
    assert (await asyncio.wait_for(queue.pop(), 1)).info.name == "p"


async def test_a_change_during_the_cycle_is_not_lost() -> None:
    queue = SchedulingQueue(clock=Clock())
    queue.add(info(make_pod("p")))
    queued = await queue.pop()
    cycle = queue.cycle
    queue.move_all("NodeAdd")  # arrives while the pod is being scheduled
    queue.add_unschedulable(queued, cycle)
    assert queue.sizes()[BACKOFF] == 1


async def test_parked_too_long_goes_back() -> None:
    clock = Clock()
    queue = SchedulingQueue(clock=clock, max_unschedulable=60)
    queue.add(info(make_pod("p")))
    queue.add_unschedulable(await queue.pop(), 0)
    clock.now += 61
    queue.flush()
    assert queue.sizes()[ACTIVE] == 1


async def test_update_of_a_parked_pod_retries_it_and_delete_drops_it() -> None:
    clock = Clock()
    queue = SchedulingQueue(clock=clock)
    pod = make_pod("p", cpu="8")
    queue.add(info(pod))
    queue.add_unschedulable(await queue.pop(), 0)
    queue.update(info(pod))
    assert queue.sizes()[UNSCHEDULABLE] == 1
    smaller = make_pod("p", cpu="1")
    clock.now += 5
    queue.update(info(smaller))
    assert queue.sizes()[ACTIVE] == 1
    queue.delete("default/p")
    assert len(queue) == 0


async def test_pop_waits_and_close_stops_it() -> None:
    queue = SchedulingQueue()
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0.01)
    queue.add(info(make_pod("late")))
    assert (await asyncio.wait_for(waiter, 1)).info.name == "late"
    closing = asyncio.create_task(queue.pop())
    await asyncio.sleep(0.01)
    queue.close()
    try:
        await asyncio.wait_for(closing, 1)
    except Exception as exc:
        assert type(exc).__name__ == "ShutDownError"


async def test_the_parked_set_follows_every_way_out_of_unschedulable() -> None:
    clock = Clock()
    queue = SchedulingQueue(clock=clock, max_unschedulable=60)
    for name in ("moved", "deleted", "changed", "waited", "other"):
        queue.add(info(make_pod(name)))
    popped = {}
    for _ in range(5):
        queued = await queue.pop()
        popped[queued.info.name] = queued
        queue.add_unschedulable(queued, queue.cycle)
    assert sorted(q.info.name for q in queue.parked()) == ["changed", "deleted", "moved", "other", "waited"]
    queue.delete("default/deleted")
    queue.update(info(make_pod("changed", cpu="1")))
    assert sorted(q.info.name for q in queue.parked()) == ["moved", "other", "waited"]
    # The changed pod is retried after its back-off (it failed a moment ago).
    assert queue.sizes() == {ACTIVE: 0, BACKOFF: 1, UNSCHEDULABLE: 3}
    # Parked too long: back to active at the next flush, the others stay.
    popped["waited"].failed_at -= 61
    queue.flush()
    assert sorted(q.info.name for q in queue.parked()) == ["moved", "other"]
    assert queue.move_all("NodeAdd") == 2
    assert not list(queue.parked())
    clock.now += 11
    names = {(await asyncio.wait_for(queue.pop(), 1)).info.name for _ in range(4)}
    assert names == {"changed", "waited", "moved", "other"}
    assert len(queue) == 0
