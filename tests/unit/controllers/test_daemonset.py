from __future__ import annotations

import asyncio

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.controllers.daemonset import DaemonSetController, placement
from services.controllers.podutil import is_active
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import FakeKubelet, Harness, until

DS = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {role: worker}
      containers: [{name: c, image: "pinnace/busybox:1.0"}]
"""


def node(
    name: str, labels: dict[str, str] | None = None, taints: list[tuple[str, str]] | None = None
) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = name
    n.metadata.labels.update(labels or {})
    for key, effect in taints or []:
        n.spec.taints.add(key=key, effect=effect)
    n.status.conditions.add(type="Ready", status="True")
    return n


async def daemon_nodes(client: Client) -> dict[str, str]:
    pods = (await client.list("pods", "kube-system", label_selector="app=agent")).items
    return {p.spec.node_name: p.spec.containers[0].image for p in pods if is_active(p)}


def on_nodes(client: Client, expected: set[str]):
    async def check() -> bool:
        return set(await daemon_nodes(client)) == expected

    return check


async def test_one_pod_per_eligible_node_following_joins_leaves_and_taints(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    await client.create(node("w1", {"role": "worker"}))
    await client.create(node("w2", {"role": "worker"}))
    await client.create(node("m1", {"role": "master"}))
    await client.create(node("w3", {"role": "worker"}, [("dedicated", "NoSchedule")]))
    harness.add(DaemonSetController)
    await harness.start()
    await client.create(manifest(DS))
    await until(on_nodes(client, {"w1", "w2"}))
    # A node joins; a node leaves.
    await client.create(node("w4", {"role": "worker"}))
    await until(on_nodes(client, {"w1", "w2", "w4"}))
    await client.delete("nodes", "w2")
    await until(on_nodes(client, {"w1", "w4"}))
    # A NoExecute taint the pod does not tolerate evicts it.
    w1 = await client.get("nodes", "w1")
    w1.spec.taints.add(key="evict-me", effect="NoExecute")
    await client.update(w1)
    await until(on_nodes(client, {"w4"}))

    async def status_ok() -> bool:
        ds = await client.get("daemonsets", "agent", "kube-system")
        s = ds.status
        return (s.desired_number_scheduled, s.current_number_scheduled, s.number_ready) == (1, 1, 1)

    await until(status_ok)


async def test_rolling_update_keeps_at_most_one_node_unavailable(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    for i in range(4):
        await client.create(node(f"w{i}", {"role": "worker"}))
    harness.add(DaemonSetController)
    await harness.start()
    await client.create(manifest(DS))

    async def all_ready() -> bool:
        ds = await client.get("daemonsets", "agent", "kube-system")
        return ds.status.number_available == 4 and ds.status.updated_number_scheduled == 4

    await until(all_ready)
    worst = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal worst
        while not done.is_set():
            pods = (await client.list("pods", "kube-system", label_selector="app=agent")).items
            serving = {p.spec.node_name for p in pods if is_active(p) and p.status.phase == "Running"}
            worst = max(worst, 4 - len(serving))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    await client.patch(
        "daemonsets",
        "agent",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "pinnace/busybox:2.0"}]}}}},
        "kube-system",
    )

    async def updated() -> bool:
        images = await daemon_nodes(client)
        return len(images) == 4 and set(images.values()) == {"pinnace/busybox:2.0"}

    await until(updated, timeout=20)
    await until(all_ready)
    done.set()
    await watcher
    assert worst <= 1


def test_placement_rules() -> None:
    ds = manifest(DS)
    assert placement(ds, node("a", {"role": "worker"})) == (True, True)
    assert placement(ds, node("b", {"role": "db"})) == (False, False)
    assert placement(ds, node("c", {"role": "worker"}, [("x", "NoSchedule")])) == (False, True)
    assert placement(
        ds, node("d", {"role": "worker"}, [("node.kubernetes.io/unreachable", "NoExecute")])
    ) == (True, True)
    unschedulable = node("e", {"role": "worker"}, [("node.kubernetes.io/unschedulable", "NoSchedule")])
    assert placement(ds, unschedulable) == (True, True)
