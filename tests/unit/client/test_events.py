"""The event recorder under load: several writes in flight, repeats of one Event still
aggregated in order, drops counted and logged without flooding, against a real apiserver."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.events import NORMAL, EventRecorder


class GatedClient:
    """The real client, with creates and updates held at a gate until it opens; counts how many
    were waiting at once."""

    def __init__(self, client: Client, open_at: int) -> None:
        self.client = client
        self.open_at = open_at
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0

    async def _held(self, call: Any, obj: Any) -> Any:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.in_flight >= self.open_at:
            self.gate.set()
        try:
            await self.gate.wait()
            return await call(obj)
        finally:
            self.in_flight -= 1

    async def create(self, obj: Any) -> Any:
        return await self._held(self.client.create, obj)

    async def update(self, obj: Any) -> Any:
        return await self._held(self.client.update, obj)


def _ref(name: str) -> core_pb2.ObjectReference:
    return core_pb2.ObjectReference(kind="Pod", api_version="v1", namespace="default", name=name, uid=name)


async def _events(client: Client) -> list[core_pb2.Event]:
    return (await client.list("events", "default")).items  # type: ignore[return-value]


async def test_several_events_are_written_at_once(client: Client) -> None:
    gated = GatedClient(client, open_at=4)
    recorder = EventRecorder(gated, "tester", parallel=4)  # type: ignore[arg-type]
    try:
        for i in range(20):
            recorder.event(_ref(f"pod-{i}"), NORMAL, "Scheduled", f"Successfully assigned default/pod-{i}")
        # A recorder writing one event at a time never opens the gate: this would time out.
        await asyncio.wait_for(recorder.flush(), 10)
        assert recorder.writers == 4
    finally:
        await recorder.close()
    assert gated.most_in_flight == 4
    events = await _events(client)
    assert sorted(e.involved_object.name for e in events) == sorted(f"pod-{i}" for i in range(20))
    assert all(e.count == 1 and e.source.component == "tester" for e in events)
    assert recorder.dropped == 0


async def test_repeats_of_one_event_are_aggregated_while_others_are_in_flight(client: Client) -> None:
    recorder = EventRecorder(client, "tester", parallel=8)
    try:
        for i in range(5):
            recorder.event(_ref("busy"), NORMAL, "BackOff", "Back-off restarting failed container")
            recorder.event(_ref(f"other-{i}"), NORMAL, "Pulled", "image pulled")
        await asyncio.wait_for(recorder.flush(), 10)
    finally:
        await recorder.close()
    events = await _events(client)
    busy = [e for e in events if e.involved_object.name == "busy"]
    assert len(busy) == 1 and busy[0].count == 5
    assert busy[0].last_timestamp.ToNanoseconds() >= busy[0].first_timestamp.ToNanoseconds()
    assert len(events) == 6


async def test_events_over_the_queue_are_dropped_counted_and_logged_once(client: Client) -> None:
    gated = GatedClient(client, open_at=99)
    recorder = EventRecorder(gated, "tester", queue_size=2, parallel=1)  # type: ignore[arg-type]
    try:
        with capture_logs() as logs:
            for i in range(6):
                recorder.event(_ref(f"pod-{i}"), NORMAL, "Scheduled", "assigned")
        # Nothing was written yet: the queue holds two, the other four are dropped.
        assert recorder.dropped == 4
        drops = [entry for entry in logs if entry["event"] == "events dropped: queue full"]
        assert len(drops) == 1 and drops[0]["log_level"] == "warning"
        gated.gate.set()
        await asyncio.wait_for(recorder.flush(), 10)
    finally:
        await recorder.close()
    assert sorted(e.involved_object.name for e in await _events(client)) == ["pod-0", "pod-1"]


async def test_a_component_recording_little_keeps_one_writer(client: Client) -> None:
    recorder = EventRecorder(client, "tester")
    try:
        for i in range(3):
            recorder.event(_ref(f"pod-{i}"), NORMAL, "Pulled", "image pulled")
            await asyncio.wait_for(recorder.flush(), 10)
        assert recorder.writers == 1
    finally:
        await recorder.close()
    assert len(await _events(client)) == 3


async def test_parallel_below_one_is_refused(client: Client) -> None:
    with pytest.raises(ValueError, match="parallel must be at least 1, got 0"):
        EventRecorder(client, "tester", parallel=0)


async def test_a_recorder_closed_mid_write_flushes_again_after_a_restart(client: Client) -> None:
    gated = GatedClient(client, open_at=99)
    recorder = EventRecorder(gated, "tester", parallel=2)  # type: ignore[arg-type]
    for _ in range(3):
        recorder.event(_ref("busy"), NORMAL, "BackOff", "Back-off restarting failed container")
    # One writer takes the first and waits at the gate; the other sets the repeats aside for it.
    for _ in range(5):
        await asyncio.sleep(0)
    assert gated.in_flight == 1 and recorder._queue.qsize() == 0
    await recorder.close()
    gated.gate.set()
    recorder.event(_ref("later"), NORMAL, "Pulled", "image pulled")
    try:
        await asyncio.wait_for(recorder.flush(), 10)
    finally:
        await recorder.close()
    assert [e.involved_object.name for e in await _events(client)] == ["later"]
