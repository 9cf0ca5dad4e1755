"""`pinctl cordon`, `uncordon` and `drain` against the in-process apiserver: kubectl's
refusals (DaemonSet, local storage, unmanaged pods), evictions through the eviction
subresource, and PodDisruptionBudgets the apiserver enforces (429s retried until --timeout)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.cli.ops import drain
from services.client.client import Client
from services.client.errors import NotFoundError
from services.controllers.disruption import DisruptionController
from services.controllers.replicaset import ReplicaSetController
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.cli.conftest import Pinctl
from tests.unit.controllers.fakes import FakeKubelet, Harness, until


async def make_node(client: Client, name: str) -> None:
    node = core_pb2.Node()
    node.metadata.name = name
    await client.create(node)


async def unschedulable(client: Client, name: str) -> bool:
    return (await client.get("nodes", name)).spec.unschedulable


def owned_by(obj: core_pb2.Pod, kind: str, name: str, api_version: str = "apps/v1") -> None:
    obj.metadata.owner_references.append(
        meta_pb2.OwnerReference(
            api_version=api_version, kind=kind, name=name, uid=f"uid-{name}", controller=True
        )
    )


@pytest.fixture
async def kubelet(client: Client) -> AsyncIterator[FakeKubelet]:
    fake = FakeKubelet(client, bind=False)
    await fake.start()
    yield fake
    await fake.stop()


async def pod_names(client: Client, node: str) -> set[str]:
    listed = await client.list("pods", "", field_selector=f"spec.nodeName={node}")
    return {p.metadata.name for p in listed.items if not p.metadata.HasField("deletion_timestamp")}


async def test_cordon_and_uncordon(pinctl: Pinctl, client: Client) -> None:
    await make_node(client, "node-a")
    assert (await pinctl("cordon", "node-a")).out == "node/node-a cordoned\n"
    assert await unschedulable(client, "node-a")
    assert (await pinctl("cordon", "node-a")).out == "node/node-a already cordoned\n"
    assert (await pinctl("uncordon", "node-a")).out == "node/node-a uncordoned\n"
    assert not await unschedulable(client, "node-a")
    assert (await pinctl("uncordon", "node-a")).out == "node/node-a already uncordoned\n"
    dry = await pinctl("cordon", "node-a", "--dry-run=client")
    assert dry.out == "node/node-a cordoned (dry run)\n"
    assert not await unschedulable(client, "node-a")
    missing = await pinctl("cordon", "nope")
    assert (missing.code, missing.err) == (1, 'Error from server (NotFound): nodes "nope" not found\n')
    assert (await pinctl("cordon")).code == 2


async def test_drain_refuses_what_would_not_come_back(
    pinctl: Pinctl, client: Client, kubelet: FakeKubelet
) -> None:
    await make_node(client, "node-a")
    daemon = manifest("""
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
""")
    daemon = await client.create(daemon)
    agent = pod("agent-x", node="node-a", labels={"app": "agent"})
    agent.metadata.owner_references.append(
        meta_pb2.OwnerReference(
            api_version="apps/v1", kind="DaemonSet", name="agent", uid=daemon.metadata.uid, controller=True
        )
    )
    scratch = pod("scratch", node="node-a")
    owned_by(scratch, "ReplicaSet", "web")
    scratch.spec.volumes.add(name="tmp").empty_dir.SetInParent()
    loner = pod("loner", node="node-a")
    managed = pod("managed", node="node-a")
    owned_by(managed, "ReplicaSet", "web")
    other = pod("elsewhere", node="node-b")
    for item in (agent, scratch, loner, managed, other):
        await client.create(item)
    everything = await pod_names(client, "node-a")

    refused = await pinctl("drain", "node-a")
    assert refused.code == 1
    assert refused.out == "node/node-a cordoned\n"
    reasons = (
        "[cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent-x, "
        "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/scratch, "
        "cannot delete Pods that declare no controller (use --force to override): default/loner]"
    )
    assert refused.err == (
        f'error: unable to drain node "node-a" due to error: {reasons}, continuing command...\n'
        "There are pending nodes to be drained:\n node-a\n"
        f"error: {reasons}\n"
    )
    assert await pod_names(client, "node-a") == everything
    assert await unschedulable(client, "node-a")

    dry = await pinctl(
        "drain", "node-a", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--dry-run"
    )
    assert dry.code == 0
    assert await pod_names(client, "node-a") == everything

    drained = await pinctl(
        "drain", "node-a", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=20s"
    )
    assert drained.code == 0, drained.err
    out = drained.out.splitlines()
    assert out[0] == "node/node-a already cordoned"
    assert out[-1] == "node/node-a drained"
    assert {line for line in out if line.endswith(" evicted")} == {
        "pod/scratch evicted",
        "pod/loner evicted",
        "pod/managed evicted",
    }
    assert "evicting pod default/managed" in out
    assert drained.err.startswith("Warning: ")
    assert "ignoring DaemonSet-managed Pods: default/agent-x" in drained.err
    assert "deleting Pods that declare no controller: default/loner" in drained.err
    assert await pod_names(client, "node-a") == {"agent-x"}
    assert await pod_names(client, "node-b") == {"elsewhere"}


@pytest.fixture
async def budgeted(client: Client) -> AsyncIterator[dict[str, str]]:
    """A two-pod ReplicaSet on node-a under a PodDisruptionBudget, with the replica set and
    disruption controllers running; pods the controller creates later land on `target`."""
    for name in ("node-a", "node-b"):
        await make_node(client, name)
    harness = Harness(client)
    harness.add(ReplicaSetController)
    harness.add(DisruptionController)
    await harness.start()
    fake = FakeKubelet(client, bind=False)
    await fake.start()
    target = {"node": "node-a"}

    async def bind() -> None:
        while True:
            for item in (await client.list("pods", "default")).items:
                if not item.spec.node_name and not item.metadata.HasField("deletion_timestamp"):
                    with contextlib.suppress(Exception):
                        await client.bind(item.metadata.name, "default", target["node"])
            await asyncio.sleep(0.02)

    binder = asyncio.create_task(bind())
    await client.create(
        manifest("""
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
""")
    )
    await client.create(
        manifest("""
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
""")
    )

    async def settled() -> bool:
        budget = await client.get("poddisruptionbudgets", "web", "default")
        return (
            budget.status.current_healthy == 2
            and budget.status.observed_generation == budget.metadata.generation
        )

    await until(settled, timeout=20)
    yield target
    binder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await binder
    await fake.stop()
    await harness.stop()


async def test_drain_honours_a_disruption_budget(
    pinctl: Pinctl, client: Client, budgeted: dict[str, str]
) -> None:
    before = await pod_names(client, "node-a")
    assert len(before) == 2
    refused = await pinctl("drain", "node-a", "--timeout=1s")
    assert refused.code == 1
    assert "Cannot evict pod as it would violate the pod's disruption budget." in refused.err
    assert "(will retry after 5s)" in refused.err
    assert "global timeout reached: 1s" in refused.err
    assert 'There are pending pods in node "node-a" when an error occurred' in refused.err
    assert await pod_names(client, "node-a") == before


async def test_evictions_retry_until_the_budget_allows_them(client: Client, budgeted: dict[str, str]) -> None:
    budgeted["node"] = "node-b"  # replacements land on the other node
    await client.patch("poddisruptionbudgets", "web", {"spec": {"minAvailable": 1}}, "default")
    before = await pod_names(client, "node-a")
    out: list[str] = []
    err: list[str] = []
    options = drain.DrainOptions(timeout=30.0, retry_delay=0.05, poll_interval=0.05)
    await drain.set_unschedulable(client, "node-a", True)
    await drain.drain_node(client, "node-a", options, out.append, err.append)
    assert await pod_names(client, "node-a") == set()
    assert [line for line in out if line.endswith(" evicted")] != []
    assert {
        line.removeprefix("pod/").removesuffix(" evicted") for line in out if line.endswith(" evicted")
    } == before
    # Only one pod could go at first: the other waited for its replacement to become healthy.
    assert any("violate the pod's disruption budget" in line for line in err)

    async def replaced() -> bool:
        return len(await pod_names(client, "node-b")) == 2

    await until(replaced, timeout=20)


async def test_drain_bad_input(pinctl: Pinctl, client: Client) -> None:
    await make_node(client, "node-a")
    both = await pinctl("drain", "node-a", "-l", "pool=x")
    assert (both.code, both.err) == (2, "error: cannot specify both a node name and a --selector option\n")
    nothing = await pinctl("drain")
    assert (nothing.code, nothing.err) == (2, "error: USAGE: drain NODE [flags]\n")
    missing = await pinctl("drain", "nope")
    assert missing.err == 'Error from server (NotFound): nodes "nope" not found\n'
    with pytest.raises(NotFoundError):
        await client.get("nodes", "nope")
    assert not await unschedulable(client, "node-a")
