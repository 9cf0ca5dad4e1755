from __future__ import annotations

import asyncio
import contextlib

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.controllers.podutil import controller_ref, deletion_rank, is_active
from services.controllers.replicaset import ReplicaSetController, ReplicationControllerController
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.controllers.fakes import FakeKubelet, Harness, scale, until

RS = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchExpressions: [{key: app, operator: In, values: [web, web2]}]}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
"""

RC = """
apiVersion: v1
kind: ReplicationController
metadata: {name: fe, namespace: default}
spec:
  replicas: 2
  selector: {app: fe}
  template:
    metadata: {labels: {app: fe}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
"""


async def active_pods(client: Client, selector: str) -> list[core_pb2.Pod]:
    pods = (await client.list("pods", "default", label_selector=selector)).items
    return [p for p in pods if is_active(p)]


async def count_is(client: Client, selector: str, n: int) -> bool:
    return len(await active_pods(client, selector)) == n


async def test_replicaset_keeps_replicas_and_reports_status(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(ReplicaSetController)
    await harness.start()
    await client.create(manifest(RS))
    await until(lambda: count_is(client, "app=web", 3))

    async def status_ready() -> bool:
        rs = await client.get("replicasets", "web", "default")
        s = rs.status
        return (s.replicas, s.ready_replicas, s.available_replicas, s.fully_labeled_replicas) == (3, 3, 3, 3)

    await until(status_ready)
    # A deleted pod is replaced.
    victim = (await active_pods(client, "app=web"))[0]
    await client.delete("pods", victim.metadata.name, "default")
    await until(lambda: count_is(client, "app=web", 3))
    # Scale up and down through the scale subresource.
    await scale(client, "replicasets", "web", 5, "default")
    await until(lambda: count_is(client, "app=web", 5))
    await scale(client, "replicasets", "web", 1, "default")
    await until(lambda: count_is(client, "app=web", 1))
    await until(status_ready_one(client))
    events = (await client.list("events", "default", field_selector="involvedObject.name=web")).items
    assert {e.reason for e in events} >= {"SuccessfulCreate", "SuccessfulDelete"}


def status_ready_one(client: Client):
    async def check() -> bool:
        rs = await client.get("replicasets", "web", "default")
        return rs.status.replicas == 1 and rs.status.available_replicas == 1

    return check


async def test_expectations_prevent_double_creation_with_a_slow_watch(
    client: Client, harness: Harness
) -> None:
    ctl = harness.add(ReplicaSetController)
    harness.informers.start()
    await harness.informers.wait_synced(5)
    rs = await client.create(manifest(RS))
    await until(lambda: ctl.owners.store.get("default/web") is not None)
    await ctl.pods.stop()  # the pod watch stalls: the cache never sees the new pods
    await ctl.sync("default/web")
    await ctl.sync("default/web")
    await ctl.sync("default/web")
    assert ctl.expectations.pending("default/web") == (3, 0)
    pods = await active_pods(client, "app=web")
    assert len(pods) == 3
    assert all(controller_ref(p).uid == rs.metadata.uid for p in pods)


async def test_adopts_orphans_and_releases_pods_that_stop_matching(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    orphan = await client.create(pod("orphan", labels={"app": "web2"}))
    harness.add(ReplicaSetController)
    await harness.start()
    rs = await client.create(manifest(RS))
    await until(lambda: count_is(client, "app in (web, web2)", 3))

    async def adopted() -> bool:
        p = await client.get("pods", "orphan", "default")
        ref = controller_ref(p)
        return ref is not None and ref.uid == rs.metadata.uid

    await until(adopted)
    assert orphan.metadata.uid == (await client.get("pods", "orphan", "default")).metadata.uid
    # The orphan counted: only two new pods were made.
    assert len(await active_pods(client, "app=web")) == 2
    # Relabel: released, and replaced.
    await client.patch("pods", "orphan", {"metadata": {"labels": {"app": "debug"}}}, "default")

    async def released() -> bool:
        p = await client.get("pods", "orphan", "default")
        return controller_ref(p) is None

    await until(released)
    await until(lambda: count_is(client, "app in (web, web2)", 3))
    assert is_active(await client.get("pods", "orphan", "default"))


async def test_scale_down_deletes_least_valuable_first(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(ReplicaSetController)
    await harness.start()
    await client.create(manifest(RS))
    await until(lambda: count_is(client, "app=web", 3))

    async def all_ready() -> bool:
        return (await client.get("replicasets", "web", "default")).status.ready_replicas == 3

    await until(all_ready)
    pods = await active_pods(client, "app=web")
    laggard = pods[1].metadata.name
    await kubelet.set_status("default", laggard, ready=False)

    async def two_ready() -> bool:
        return (await client.get("replicasets", "web", "default")).status.ready_replicas == 2

    await until(two_ready)
    await scale(client, "replicasets", "web", 2, "default")
    await until(lambda: count_is(client, "app=web", 2))
    assert laggard not in {p.metadata.name for p in await active_pods(client, "app=web")}


def test_deletion_rank_orders_pods() -> None:
    def make(name: str, node: str, phase: str, ready: bool, created: int) -> core_pb2.Pod:
        p = pod(name, node=node)
        p.status.phase = phase
        p.status.conditions.add(type="Ready", status="True" if ready else "False")
        p.metadata.creation_timestamp.seconds = created
        return p

    pods = [
        make("old-ready", "n", "Running", True, 1),
        make("new-ready", "n", "Running", True, 5),
        make("unscheduled", "", "Pending", False, 1),
        make("pending", "n", "Pending", False, 1),
        make("not-ready", "n", "Running", False, 1),
    ]
    order = [p.metadata.name for p in sorted(pods, key=deletion_rank)]
    assert order == ["unscheduled", "pending", "not-ready", "new-ready", "old-ready"]


async def test_replication_controller_with_equality_selector(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(ReplicationControllerController)
    await harness.start()
    await client.create(manifest(RC))
    await until(lambda: count_is(client, "app=fe", 2))

    async def ready() -> bool:
        rc = await client.get("replicationcontrollers", "fe", "default")
        return rc.status.ready_replicas == 2 and rc.status.observed_generation == rc.metadata.generation

    await until(ready)


async def test_conflict_storm_converges_without_extra_pods(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(ReplicaSetController)
    await harness.start()
    await client.create(manifest(RS))

    async def scaler(values: list[int]) -> None:
        for v in values:
            for _ in range(20):
                try:
                    await scale(client, "replicasets", "web", v, "default")
                    break
                except Exception:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.01)

    async def toucher() -> None:
        for i in range(15):
            with contextlib.suppress(Exception):
                await client.patch(
                    "replicasets", "web", {"metadata": {"annotations": {"t": str(i)}}}, "default"
                )

    await asyncio.gather(scaler([6, 2, 8, 4]), scaler([1, 7, 3]), toucher())
    await scale(client, "replicasets", "web", 4, "default")
    await until(lambda: count_is(client, "app=web", 4))
    await asyncio.sleep(0.5)
    assert len(await active_pods(client, "app=web")) == 4
