"""Scenarios on a real (in-process) apiserver: the scheduler watches, binds, reports."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from pinnace.api.core.v1 import core_pb2
from pinnace.api.policy.v1 import policy_pb2
from pinnace.api.scheduling.v1 import scheduling_pb2
from services.client.client import Client
from tests.unit.scheduler.conftest import fast_config, until
from tests.unit.scheduler.helpers import make_node, make_pod
from tests.unit.scheduler.test_filters import anti


def api_pod(name: str, **kwargs) -> core_pb2.Pod:
    pod = make_pod(name, **kwargs)
    pod.metadata.uid = ""
    pod.metadata.ClearField("creation_timestamp")
    return pod


async def bound(client: Client, names: list[str], namespace: str = "default") -> dict[str, str] | None:
    pods = {p.metadata.name: p.spec.node_name for p in (await client.list("pods", namespace)).items}
    if all(pods.get(n) for n in names):
        return {n: pods[n] for n in names}
    return None


async def pod_of(client: Client, name: str) -> core_pb2.Pod:
    pod = await client.get("pods", name, "default")
    assert isinstance(pod, core_pb2.Pod)
    return pod


async def events_for(client: Client, name: str) -> list[core_pb2.Event]:
    listed = await client.list("events", "default", field_selector=f"involvedObject.name={name}")
    return list(listed.items)  # type: ignore[arg-type]


async def test_replication_controller_pods_spread_evenly_and_events(client, start_scheduler) -> None:
    for i in range(3):
        await client.create(make_node(f"node-{i}"))
    rc = core_pb2.ReplicationController()
    rc.metadata.name, rc.metadata.namespace = "web", "default"
    rc.spec.replicas = 6
    rc.spec.selector["app"] = "web"
    rc.spec.template.metadata.labels["app"] = "web"
    rc.spec.template.spec.containers.add(name="c", image="busybox:1.0")
    await client.create(rc)
    await start_scheduler()
    names = [f"web-{i}" for i in range(6)]
    for name in names:
        await client.create(api_pod(name, labels={"app": "web"}, cpu="100m"))
    placed = await until(lambda: bound(client, names))
    assert sorted(Counter(placed.values()).values()) == [2, 2, 2]
    pod = await pod_of(client, "web-0")
    condition = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert condition.status == "True"
    events = await until(lambda: events_for(client, "web-0"))
    assert events[0].reason == "Scheduled"
    assert events[0].message == f"Successfully assigned default/web-0 to {pod.spec.node_name}"
    assert events[0].source.component == "default-scheduler"
    assert events[0].type == "Normal"


async def test_node_selector_affinity_and_taints_are_honoured(client, start_scheduler) -> None:
    await client.create(make_node("plain"))
    await client.create(make_node("ssd", labels={"disk": "ssd"}))
    await client.create(make_node("gpu", labels={"disk": "ssd"}, taints=[("gpu", "true", "NoSchedule")]))
    await start_scheduler()
    from tests.unit.scheduler.test_filters import required, toleration

    await client.create(api_pod("selector", node_selector={"disk": "ssd"}, tolerations=[]))
    await client.create(api_pod("affinity", affinity=required([("disk", "NotIn", ["ssd"])])))
    await client.create(
        api_pod(
            "tolerant",
            tolerations=[toleration("gpu", value="true", effect="NoSchedule")],
            affinity=required([("kubernetes.io/hostname", "In", ["gpu"])]),
        )
    )
    placed = await until(lambda: bound(client, ["selector", "affinity", "tolerant"]))
    assert placed == {"selector": "ssd", "affinity": "plain", "tolerant": "gpu"}
    # Without the toleration no pod ever lands on the tainted node.
    names = [f"many-{i}" for i in range(8)]
    for name in names:
        await client.create(api_pod(name, node_selector={"disk": "ssd"}))
    placed = await until(lambda: bound(client, names))
    assert set(placed.values()) == {"ssd"}


async def test_anti_affinity_keeps_replicas_apart_and_reports_failure(client, start_scheduler) -> None:
    for i in range(3):
        await client.create(make_node(f"node-{i}"))
    await start_scheduler()
    names = [f"db-{i}" for i in range(4)]
    for name in names:
        await client.create(api_pod(name, labels={"app": "db"}, affinity=anti({"app": "db"})))

    async def three_bound() -> list[str] | None:
        pods = (await client.list("pods", "default")).items
        nodes = [p.spec.node_name for p in pods if p.spec.node_name]
        return nodes if len(nodes) == 3 else None

    nodes = await until(three_bound)
    assert sorted(nodes) == ["node-0", "node-1", "node-2"]
    pending = next(p for p in (await client.list("pods", "default")).items if not p.spec.node_name)
    message = "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."

    async def condition() -> core_pb2.PodCondition | None:
        pod = await pod_of(client, pending.metadata.name)
        return next((c for c in pod.status.conditions if c.type == "PodScheduled"), None)

    cond = await until(condition)
    assert (cond.status, cond.reason, cond.message) == ("False", "Unschedulable", message)
    events = await until(lambda: events_for(client, pending.metadata.name))
    assert (events[0].type, events[0].reason, events[0].message) == ("Warning", "FailedScheduling", message)


async def test_unschedulable_pod_is_scheduled_as_soon_as_a_node_fits(client, start_scheduler) -> None:
    await client.create(make_node("small", cpu="1"))
    await start_scheduler()
    await client.create(api_pod("big", cpu="4"))

    async def failed() -> bool:
        pod = await pod_of(client, "big")
        return any(c.type == "PodScheduled" and c.status == "False" for c in pod.status.conditions)

    await until(failed)
    pod = await pod_of(client, "big")
    cond = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert cond.message == "0/1 nodes are available: 1 Insufficient cpu."
    started = time.monotonic()
    await client.create(make_node("large", cpu="8"))
    placed = await until(lambda: bound(client, ["big"]), interval=0.01)
    assert placed == {"big": "large"}
    assert time.monotonic() - started < 1.0


async def test_preemption_evicts_the_lowest_priority_victims(client, start_scheduler) -> None:
    for name, value in (("low", 10), ("mid", 100), ("high", 1000)):
        pc = scheduling_pb2.PriorityClass(value=value)
        pc.metadata.name = name
        await client.create(pc)
    await client.create(make_node("node", cpu="3"))
    scheduler = await start_scheduler()
    for name, cls in (("low-0", "low"), ("low-1", "low"), ("mid-0", "mid")):
        await client.create(api_pod(name, cpu="1", priority_class_name=cls))
    await until(lambda: bound(client, ["low-0", "low-1", "mid-0"]))
    await client.create(api_pod("urgent", cpu="2", priority_class_name="high"))

    async def terminating() -> list[str] | None:
        pods = (await client.list("pods", "default")).items
        names = sorted(p.metadata.name for p in pods if p.metadata.HasField("deletion_timestamp"))
        return names or None

    victims = await until(terminating)
    assert victims == ["low-0", "low-1"]
    urgent = await until(lambda: _nominated(client))
    assert urgent == "node"
    # The victims keep their grace period; the kubelet (played here) confirms their end.
    for name in victims:
        await client.delete("pods", name, "default", grace_period_seconds=0)
    placed = await until(lambda: bound(client, ["urgent"]))
    assert placed == {"urgent": "node"}
    assert (await pod_of(client, "mid-0")).spec.node_name == "node"
    preempted = await until(lambda: events_for(client, "low-0"))
    assert any(e.reason == "Preempted" for e in preempted)
    assert scheduler.cache.nominated == {}


async def _nominated(client: Client) -> str:
    return (await pod_of(client, "urgent")).status.nominated_node_name


async def test_equal_priority_is_never_preempted(client, start_scheduler) -> None:
    pc = scheduling_pb2.PriorityClass(value=100)
    pc.metadata.name = "prod"
    await client.create(pc)
    await client.create(make_node("node", cpu="1"))
    await start_scheduler()
    await client.create(api_pod("first", cpu="1", priority_class_name="prod"))
    await until(lambda: bound(client, ["first"]))
    await client.create(api_pod("second", cpu="1", priority_class_name="prod"))
    events = await until(lambda: events_for(client, "second"))
    assert events[0].reason == "FailedScheduling"
    await asyncio.sleep(0.3)
    assert not (await pod_of(client, "first")).metadata.HasField("deletion_timestamp")


async def test_schedulers_side_by_side_by_name(client, start_scheduler) -> None:
    await client.create(make_node("node"))
    await start_scheduler()
    await client.create(api_pod("mine", scheduler_name="default-scheduler"))
    other = api_pod("theirs")
    other.spec.scheduler_name = "batch"
    await client.create(other)
    await until(lambda: bound(client, ["mine"]))
    await asyncio.sleep(0.3)
    assert not (await pod_of(client, "theirs")).spec.node_name
    await start_scheduler(fast_config(scheduler_name="batch"))
    assert await until(lambda: bound(client, ["theirs"])) == {"theirs": "node"}
    events = await until(lambda: events_for(client, "theirs"))
    assert events[0].source.component == "batch"


async def test_deleted_pod_frees_room_for_a_parked_one(client, start_scheduler) -> None:
    await client.create(make_node("node", cpu="1"))
    await start_scheduler()
    await client.create(api_pod("first", cpu="1"))
    await until(lambda: bound(client, ["first"]))
    await client.create(api_pod("second", cpu="1"))
    await until(lambda: events_for(client, "second"))
    await client.delete("pods", "first", "default", grace_period_seconds=0)
    assert await until(lambda: bound(client, ["second"])) == {"second": "node"}


async def test_preemption_prefers_victims_outside_disruption_budgets(client, start_scheduler) -> None:
    for name, value in (("low", 10), ("lower", 5), ("high", 1000)):
        pc = scheduling_pb2.PriorityClass(value=value)
        pc.metadata.name = name
        await client.create(pc)
    for node in ("node-a", "node-b"):
        await client.create(make_node(node, cpu="1"))
    guarded = api_pod("guarded", cpu="1", node="node-a", labels={"app": "db"}, priority_class_name="lower")
    await client.create(guarded)
    await client.create(
        api_pod("free", cpu="1", node="node-b", labels={"app": "web"}, priority_class_name="low")
    )
    pdb = policy_pb2.PodDisruptionBudget()
    pdb.metadata.name, pdb.metadata.namespace = "db", "default"
    pdb.spec.min_available.int_val = 1
    pdb.spec.selector.match_labels["app"] = "db"
    created = await client.create(pdb)
    created.status.current_healthy = created.status.desired_healthy = created.status.expected_pods = 1
    created.status.observed_generation = created.metadata.generation
    await client.update_status(created)
    scheduler = await start_scheduler()
    await until(lambda: _budget_seen(scheduler))
    await client.create(api_pod("urgent", cpu="1", priority_class_name="high"))
    assert await until(lambda: _nominated(client)) == "node-b"
    assert (await pod_of(client, "free")).metadata.HasField("deletion_timestamp")
    assert not (await pod_of(client, "guarded")).metadata.HasField("deletion_timestamp")


async def _budget_seen(scheduler) -> bool:
    return "default/db" in scheduler.cache.budgets
