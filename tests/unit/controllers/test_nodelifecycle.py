from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pinnace.api.coordination.v1 import coordination_pb2
from pinnace.api.core.v1 import core_pb2
from services.apiserver.admission.default_toleration_seconds import DefaultTolerationSeconds
from services.apiserver.server import APIServer
from services.client.client import Client
from services.controllers import taints as tt
from services.controllers.nodelifecycle import (
    FULL_DISRUPTION,
    NORMAL_ZONE,
    PARTIAL_DISRUPTION,
    NodeLifecycleController,
    TokenBucket,
    zone_state,
)
from services.controllers.podutil import now_ts
from services.controllers.replicaset import ReplicaSetController
from tests.unit.apiserver.conftest import config_for
from tests.unit.apiserver.helpers import pod
from tests.unit.controllers.fakes import FakeKubelet, Harness, until
from tests.unit.controllers.test_replicaset import RS


@pytest.fixture
async def toleration_server(tmp_path: Path) -> AsyncIterator[APIServer]:
    config = config_for(tmp_path)
    # The same plugin with test timings instead of the default one.
    config.admission_plugins = [p for p in config.admission_plugins if p != "DefaultTolerationSeconds"]
    config.extra_admission = [DefaultTolerationSeconds(not_ready_seconds=1, unreachable_seconds=1)]
    apiserver = APIServer(config)
    await apiserver.start()
    yield apiserver
    await apiserver.stop(grace=0)


@pytest.fixture
async def tclient(toleration_server: APIServer) -> AsyncIterator[Client]:
    api = Client.connect(f"127.0.0.1:{toleration_server.port}", timeout=10)
    yield api
    await api.close()


class HollowNode:
    """A node that registers Ready and renews its Lease until stopped."""

    def __init__(self, client: Client, name: str, zone: str = "") -> None:
        self.client, self.name, self.zone = client, name, zone
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        node = core_pb2.Node()
        node.metadata.name = self.name
        if self.zone:
            node.metadata.labels["topology.kubernetes.io/zone"] = self.zone
        condition = node.status.conditions.add(type="Ready", status="True", reason="KubeletReady")
        condition.last_heartbeat_time.CopyFrom(now_ts())
        await self.client.create(node)
        lease = coordination_pb2.Lease()
        lease.metadata.name, lease.metadata.namespace = self.name, "kube-node-lease"
        lease.spec.holder_identity = self.name
        lease.spec.renew_time.CopyFrom(now_ts())
        await self.client.create(lease)
        self.task = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            with contextlib.suppress(Exception):
                lease = await self.client.get("leases", self.name, "kube-node-lease")
                lease.spec.renew_time.CopyFrom(now_ts())
                await self.client.update(lease)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def test_default_toleration_seconds_admission(tclient: Client) -> None:
    created = await tclient.create(pod("p"))
    keys = {(t.key, t.effect, t.toleration_seconds) for t in created.spec.tolerations}
    assert keys == {(tt.NOT_READY, "NoExecute", 1), (tt.UNREACHABLE, "NoExecute", 1)}
    own = pod("q")
    own.spec.tolerations.add(key=tt.UNREACHABLE, operator="Exists", effect="NoExecute", toleration_seconds=7)
    created = await tclient.create(own)
    assert sorted((t.key, t.toleration_seconds) for t in created.spec.tolerations) == [
        (tt.NOT_READY, 1),
        (tt.UNREACHABLE, 7),
    ]


async def test_silent_node_is_tainted_and_its_pods_evicted_and_replaced(tclient: Client) -> None:
    harness = Harness(tclient)
    nodes = [HollowNode(tclient, name) for name in ("node-a", "node-b")]
    for node in nodes:
        await node.start()
    kubelet = FakeKubelet(tclient, nodes=["node-a", "node-b"])
    await kubelet.start()
    lifecycle = harness.add(NodeLifecycleController)
    harness.add(ReplicaSetController)
    await harness.start()
    try:
        from tests.unit.apiserver.helpers import manifest

        await tclient.create(manifest(RS.replace("replicas: 3", "replicas: 4")))

        async def running_on_both() -> bool:
            pods = (await tclient.list("pods", "default")).items
            return len(pods) == 4 and {p.spec.node_name for p in pods if p.status.phase == "Running"} == {
                "node-a",
                "node-b",
            }

        await until(running_on_both)
        # node-a dies: its lease stops, and its kubelet no longer confirms anything.
        await nodes[0].stop()
        kubelet.nodes[:] = ["node-b"]
        kubelet._next_node = iter(lambda: "node-b", None)

        async def unreachable() -> bool:
            n = await tclient.get("nodes", "node-a")
            ready = next(c for c in n.status.conditions if c.type == "Ready")
            return ready.status == "Unknown" and any(t.key == tt.UNREACHABLE for t in n.spec.taints)

        await until(unreachable, timeout=10)
        assert not any(t.key == tt.UNREACHABLE for t in (await tclient.get("nodes", "node-b")).spec.taints)

        async def replaced() -> bool:
            pods = (await tclient.list("pods", "default")).items
            live = [p for p in pods if not p.metadata.HasField("deletion_timestamp")]
            return len(live) == 4 and all(p.spec.node_name == "node-b" for p in live)

        await until(replaced, timeout=10)
        assert lifecycle.evictions >= 1
    finally:
        await harness.stop()
        await kubelet.stop()
        for node in nodes:
            await node.stop()


async def test_partitioned_zone_pauses_tainting(client: Client) -> None:
    harness = Harness(client)
    nodes = [HollowNode(client, f"z-{i}", zone="z1") for i in range(4)]
    for node in nodes:
        await node.start()
    lifecycle = harness.add(NodeLifecycleController)
    await harness.start()
    try:
        for node in nodes[:3]:
            await node.stop()

        async def all_unknown() -> bool:
            states = []
            for node in nodes[:3]:
                n = await client.get("nodes", node.name)
                states.append(next(c.status for c in n.status.conditions if c.type == "Ready"))
            return states == ["Unknown"] * 3

        await until(all_unknown, timeout=10)
        await asyncio.sleep(0.5)
        assert lifecycle.zone_states["z1"] == PARTIAL_DISRUPTION
        for node in nodes:
            n = await client.get("nodes", node.name)
            assert not any(t.effect == "NoExecute" for t in n.spec.taints)
    finally:
        await harness.stop()
        for node in nodes:
            await node.stop()


def test_zone_states_and_token_bucket() -> None:
    assert zone_state(4, 4, 0.55) == FULL_DISRUPTION
    assert zone_state(4, 3, 0.55) == PARTIAL_DISRUPTION
    assert zone_state(10, 2, 0.55) == NORMAL_ZONE
    bucket = TokenBucket(rate=0.1)
    assert bucket.take()
    assert not bucket.take()
    assert 9 < bucket.wait() <= 10
    assert not TokenBucket(rate=0.0).take()


def test_toleration_seconds() -> None:
    taint = core_pb2.Taint(key=tt.UNREACHABLE, effect="NoExecute")
    assert tt.toleration_seconds([], taint) == 0.0
    forever = core_pb2.Toleration(operator="Exists")
    assert tt.toleration_seconds([forever], taint) is None
    timed = core_pb2.Toleration(
        key=tt.UNREACHABLE, operator="Exists", effect="NoExecute", toleration_seconds=30
    )
    assert tt.toleration_seconds([timed], taint) == 30


async def test_pods_of_a_deleted_node_are_removed(client: Client) -> None:
    harness = Harness(client)
    node = HollowNode(client, "gone-node")
    await node.start()
    harness.add(NodeLifecycleController)
    await harness.start()
    try:
        await client.create(pod("stranded", node="gone-node"))
        await node.stop()
        await client.delete("nodes", "gone-node")

        async def removed() -> bool:
            return not (await client.list("pods", "default")).items

        await until(removed)
    finally:
        await harness.stop()


async def test_an_apiserver_outage_longer_than_the_grace_period_marks_no_node(tmp_path: Path) -> None:
    """While the apiserver is down the controller hears no Lease, because its own watches are
    down, not because the nodes are silent. Every node gets a whole grace period again from
    the moment the watches run (Kubernetes gets the same by restarting kube-controller-manager),
    so no node is marked Unknown and no pod NotReady; a node that really stays silent after
    the outage is still marked."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = config_for(tmp_path)
    config.listen = f"127.0.0.1:{port}"
    server = APIServer(config)
    await server.start()
    client = Client.connect(config.listen, timeout=10)
    harness = Harness(client)
    grace = harness.settings.node_monitor_grace_period
    nodes = [HollowNode(client, name) for name in ("node-a", "node-b")]
    for node in nodes:
        await node.start()
    running = await client.create(pod("web", node="node-a"))
    running.status.phase = "Running"
    running.status.conditions.add(type="Ready", status="True")
    await client.update_status(running)
    lifecycle = harness.add(NodeLifecycleController)
    await harness.start()
    try:
        await until(lambda: lifecycle._listening_since() is not None)
        await server.stop(grace=0)
        await until(lambda: lifecycle._listening_since() is None)
        await asyncio.sleep(3 * grace)  # the outage, three grace periods long
        server = APIServer(config)
        await server.start()
        await until(lambda: lifecycle._listening_since() is not None, timeout=30)
        await asyncio.sleep(3 * grace)  # time for a wrong mark to be written
        for name in ("node-a", "node-b"):
            node = await client.get("nodes", name)
            assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"], name
        web = await client.get("pods", "web", "default")
        assert [c.status for c in web.status.conditions if c.type == "Ready"] == ["True"]

        await nodes[1].stop()

        async def node_b_unknown() -> bool:
            node = await client.get("nodes", "node-b")
            return [c.status for c in node.status.conditions if c.type == "Ready"] == ["Unknown"]

        await until(node_b_unknown)
    finally:
        await harness.stop()
        for node in nodes:
            await node.stop()
        await client.close()
        await server.stop(grace=0)
