"""The pod garbage collector: terminated pods over the threshold, orphans of missing nodes
after the quarantine, unscheduled terminating pods."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.controllers.podgc import PodGarbageCollector, terminated_to_delete, unscheduled_terminating
from tests.unit.apiserver.helpers import pod
from tests.unit.controllers.fakes import Harness, fast_settings, until
from tests.unit.controllers.test_daemonset import node

QUARANTINE = 0.4


@pytest.fixture
async def podgc(client: Client) -> AsyncIterator[Harness]:
    settings = fast_settings()
    settings.terminated_pod_gc_threshold = 2
    settings.podgc_period = 0.05
    settings.podgc_quarantine = QUARANTINE
    harness = Harness(client, settings)
    harness.add(PodGarbageCollector)
    yield harness
    await harness.stop()


async def finished(client: Client, name: str, phase: str) -> None:
    created = await client.create(pod(name, node="n1"))
    created.status.phase = phase
    await client.update_status(created)


async def names(client: Client) -> list[str]:
    return sorted(p.metadata.name for p in (await client.list("pods", "default")).items)


async def test_terminated_pods_beyond_the_threshold_go_oldest_first(client: Client, podgc: Harness) -> None:
    await client.create(node("n1"))
    for name, phase in (("t0", "Succeeded"), ("t1", "Failed"), ("t2", "Succeeded"), ("t3", "Failed")):
        await finished(client, name, phase)
    await client.create(pod("running", node="n1"))
    await podgc.start()

    async def trimmed() -> bool:
        return await names(client) == ["running", "t2", "t3"]

    await until(trimmed)
    await asyncio.sleep(0.2)
    assert await names(client) == ["running", "t2", "t3"]


async def test_orphans_are_marked_failed_and_deleted_after_the_quarantine(
    client: Client, podgc: Harness
) -> None:
    await client.create(node("n1"))
    await client.create(pod("kept", node="n1"))
    stranded = pod("stranded", node="ghost")
    stranded.metadata.finalizers.append("example.com/hold")  # keeps it readable after the delete
    await client.create(stranded)
    await client.create(pod("late", node="late-node"))
    await podgc.start()
    await asyncio.sleep(QUARANTINE / 4)
    await client.create(node("late-node"))  # registers within the quarantine: not an orphan

    async def collected() -> core_pb2.Pod | None:
        found = await client.get("pods", "stranded", "default")
        assert isinstance(found, core_pb2.Pod)
        return found if found.metadata.HasField("deletion_timestamp") else None

    await until(collected)
    gone = await client.get("pods", "stranded", "default")
    assert gone.status.phase == "Failed"
    assert [(c.type, c.status, c.reason, c.message) for c in gone.status.conditions] == [
        ("DisruptionTarget", "True", "DeletionByPodGC", "PodGC: node no longer exists")
    ]
    await asyncio.sleep(QUARANTINE * 1.5)
    for name in ("kept", "late"):
        assert not (await client.get("pods", name, "default")).metadata.HasField("deletion_timestamp")


async def test_threshold_zero_keeps_everything(client: Client) -> None:
    await client.create(node("n1"))
    for name in ("a", "b"):
        await finished(client, name, "Succeeded")
    settings = fast_settings()
    settings.terminated_pod_gc_threshold = 0
    settings.podgc_period = 0.05
    harness = Harness(client, settings)
    gc = harness.add(PodGarbageCollector)
    await harness.start()
    try:
        await until(lambda: gc.syncs >= 3)
        assert await names(client) == ["a", "b"]
    finally:
        await harness.stop()


def _pod(
    name: str, phase: str, created: int, *, node_name: str = "n", deleting: bool = False
) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, "default"
    p.metadata.creation_timestamp.FromSeconds(created)
    p.spec.node_name = node_name
    p.status.phase = phase
    if deleting:
        p.metadata.deletion_timestamp.FromSeconds(created + 1)
    return p


def test_selection_functions() -> None:
    pods = [
        _pod("new", "Succeeded", 30),
        _pod("old", "Failed", 10),
        _pod("going", "Succeeded", 5, deleting=True),
        _pod("live", "Running", 1),
        _pod("mid", "Succeeded", 20),
    ]
    assert [p.metadata.name for p in terminated_to_delete(pods, 1)] == ["old", "mid"]
    assert terminated_to_delete(pods, 3) == []
    assert terminated_to_delete(pods, 0) == []
    pending = [
        _pod("unbound", "Pending", 1, node_name="", deleting=True),
        _pod("bound", "Running", 1, deleting=True),
    ]
    assert [p.metadata.name for p in unscheduled_terminating(pending)] == ["unbound"]
