from __future__ import annotations

from services.client.client import Client
from services.client.events import NORMAL, WARNING, EventRecorder
from tests.unit.apiserver.helpers import pod


async def test_repeats_are_aggregated_into_one_event(client: Client) -> None:
    created = await client.create(pod("subject"))
    recorder = EventRecorder(client, "tester", host="h1")
    try:
        for _ in range(3):
            recorder.event(created, WARNING, "FailedCreate", "quota exceeded")
        recorder.event(created, NORMAL, "Started", "ok")
        await recorder.flush()
    finally:
        await recorder.close()
    events = (await client.list("events", "default", field_selector="involvedObject.name=subject")).items
    by_reason = {e.reason: e for e in events}
    assert set(by_reason) == {"FailedCreate", "Started"}
    failed = by_reason["FailedCreate"]
    assert failed.count == 3 and failed.type == "Warning"
    assert failed.involved_object.kind == "Pod" and failed.involved_object.uid == created.metadata.uid
    assert failed.source.component == "tester" and failed.source.host == "h1"
    assert failed.last_timestamp.ToNanoseconds() >= failed.first_timestamp.ToNanoseconds()
