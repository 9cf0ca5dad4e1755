"""Object semantics of the API, checked through the gRPC client as a user sees them."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pinnace.api.core.v1 import core_pb2
from services.client import errors
from services.client.client import Client
from tests.unit.apiserver.helpers import manifest, pod


async def test_create_sets_server_fields(client: Client) -> None:
    created = await client.create(pod("web"))
    meta = created.metadata
    assert meta.uid and meta.resource_version and meta.creation_timestamp.seconds > 0
    assert meta.generation == 1
    assert created.status.phase == "Pending" and created.status.qos_class == "BestEffort"
    assert created.spec.restart_policy == "Always"  # defaulted
    fetched = await client.get("pods", "web", "default")
    assert fetched == created


async def test_generate_name(client: Client) -> None:
    template = pod("")
    template.metadata.generate_name = "web-"
    first, second = await client.create(template), await client.create(template)
    assert first.metadata.name.startswith("web-") and len(first.metadata.name) == 9
    assert first.metadata.name != second.metadata.name


async def test_generation_changes_only_with_spec(client: Client) -> None:
    deployment = manifest("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: d}}
  template: {metadata: {labels: {app: d}}, spec: {containers: [{name: c, image: "x:1"}]}}
""")
    created = await client.create(deployment)
    created.metadata.labels["team"] = "a"
    relabelled = await client.update(created)
    assert relabelled.metadata.generation == 1
    relabelled.spec.replicas = 3
    scaled = await client.update(relabelled)
    assert scaled.metadata.generation == 2
    scaled.status.replicas = 7
    status_ignored = await client.update(scaled)
    assert status_ignored.status.replicas == 0
    with_status = await client.update_status(scaled)
    assert with_status.status.replicas == 7 and with_status.metadata.generation == 2


async def test_noop_update_keeps_resource_version(client: Client) -> None:
    created = await client.create(pod("same"))
    again = await client.update(created)
    assert again.metadata.resource_version == created.metadata.resource_version


async def test_stale_resource_version_is_aborted(client: Client) -> None:
    created = await client.create(pod("stale", labels={"v": "1"}))
    first = core_pb2.Pod()
    first.CopyFrom(created)
    first.metadata.labels["v"] = "2"
    await client.update(first)
    created.metadata.labels["v"] = "3"
    with pytest.raises(errors.ConflictError) as caught:
        await client.update(created)
    assert caught.value.code == grpc.StatusCode.ABORTED
    assert "the object has been modified" in caught.value.message


async def test_concurrent_updates_exactly_one_wins(client: Client) -> None:
    created = await client.create(pod("race"))

    async def attempt(i: int) -> object:
        copy = core_pb2.Pod()
        copy.CopyFrom(created)
        copy.metadata.labels["writer"] = str(i)
        try:
            return await client.update(copy)
        except errors.ConflictError as exc:
            return exc

    results = await asyncio.gather(*(attempt(i) for i in range(8)))
    assert sum(not isinstance(r, errors.ConflictError) for r in results) == 1


async def test_finalizers_hold_deletion(client: Client) -> None:
    cm = manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.com/hold]}\n")
    await client.create(cm)
    marked, removed = await client.delete("configmaps", "held", "default")
    assert not removed and marked.metadata.deletion_timestamp.seconds > 0
    current = await client.get("configmaps", "held", "default")
    del current.metadata.finalizers[:]
    await client.update(current)
    with pytest.raises(errors.NotFoundError):
        await client.get("configmaps", "held", "default")


async def test_propagation_policy_is_recorded_as_finalizer(client: Client) -> None:
    await client.create(manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fg}\n"))
    marked, removed = await client.delete("configmaps", "fg", "default", propagation_policy="Foreground")
    assert not removed and list(marked.metadata.finalizers) == ["foregroundDeletion"]


async def test_graceful_pod_deletion(client: Client) -> None:
    await client.create(pod("unbound"))
    _, removed = await client.delete("pods", "unbound", "default")
    assert removed  # no kubelet can confirm an unscheduled pod
    await client.create(pod("bound", node="node-1"))
    marked, removed = await client.delete("pods", "bound", "default")
    assert not removed
    assert marked.metadata.deletion_grace_period_seconds == 30
    shorter, removed = await client.delete("pods", "bound", "default", grace_period_seconds=5)
    assert not removed and shorter.metadata.deletion_grace_period_seconds == 5
    _, removed = await client.delete("pods", "bound", "default", grace_period_seconds=0)
    assert removed


async def test_delete_preconditions(client: Client) -> None:
    created = await client.create(pod("pre"))
    with pytest.raises(errors.ConflictError, match="Precondition failed: UID"):
        await client.delete("pods", "pre", "default", uid="other")
    with pytest.raises(errors.ConflictError, match="ResourceVersion"):
        await client.delete("pods", "pre", "default", resource_version="1")
    _, removed = await client.delete("pods", "pre", "default", uid=created.metadata.uid)
    assert removed


async def test_namespace_lifecycle(client: Client) -> None:
    await client.create(manifest("apiVersion: v1\nkind: Namespace\nmetadata: {name: dev}\n"))
    await client.create(pod("p", namespace="dev"))
    marked, removed = await client.delete("namespaces", "dev")
    assert not removed and marked.status.phase == "Terminating"
    with pytest.raises(errors.ForbiddenError, match="because it is being terminated"):
        await client.create(pod("q", namespace="dev"))
    with pytest.raises(errors.NotFoundError, match='namespaces "nowhere" not found'):
        await client.create(pod("r", namespace="nowhere"))
    ns = await client.get("namespaces", "dev")
    del ns.spec.finalizers[:]
    await client.update(ns)
    with pytest.raises(errors.NotFoundError):
        await client.get("namespaces", "dev")
    with pytest.raises(errors.ForbiddenError):
        await client.delete("namespaces", "kube-system")


async def test_bootstrap_objects(client: Client) -> None:
    namespaces = {n.metadata.name: n for n in (await client.list("namespaces")).items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(namespaces)
    assert list(namespaces["default"].spec.finalizers) == ["kubernetes"]
    assert namespaces["default"].status.phase == "Active"
    svc = await client.get("services", "kubernetes", "default")
    assert svc.spec.cluster_ip == "10.96.0.1"
    endpoints = await client.get("endpoints", "kubernetes", "default")
    assert endpoints.subsets[0].addresses[0].ip == "127.0.0.1"


async def test_bad_input_changes_nothing(client: Client) -> None:
    before = (await client.list("pods", "default")).resource_version
    bad = pod("Bad_Name")
    bad.spec.containers[0].image = ""
    with pytest.raises(errors.InvalidError) as caught:
        await client.create(bad)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {c.field for c in caught.value.causes} == {"metadata.name", "spec.containers[0].image"}
    with pytest.raises(errors.NotFoundError, match='resource type "gadgets"'):
        await client.list("gadgets")
    huge = pod("huge")
    huge.metadata.annotations["blob"] = "x" * (2 * 1024 * 1024)
    with pytest.raises((errors.InvalidError, errors.TooLargeError)):
        await client.create(huge)
    big = manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\n")
    for i in range(2):
        big.data[f"k{i}"] = "y" * (800 * 1024)
    with pytest.raises(errors.InvalidError, match="Too long"):
        await client.create(big)
    with pytest.raises(errors.NotFoundError):
        await client.get("pods", "huge", "default")
    after = (await client.list("pods", "default")).resource_version
    assert before == after


async def test_oversized_object_is_refused(client: Client) -> None:
    big = manifest("apiVersion: v1\nkind: Secret\nmetadata: {name: big}\n")
    big.metadata.annotations["a"] = "x" * (200 * 1024)
    for i in range(8):
        big.metadata.labels[f"k{i}"] = "v"
    pod_obj = pod("wide")
    for i in range(60):
        pod_obj.spec.containers.add(name=f"c{i}", image="x:1", args=["a" * 30_000])
    with pytest.raises(errors.TooLargeError, match="Request entity too large"):
        await client.create(pod_obj)


async def test_dry_run_stores_nothing(client: Client) -> None:
    result = await client.create(pod("dry"), dry_run=True)
    assert result.metadata.uid
    with pytest.raises(errors.NotFoundError):
        await client.get("pods", "dry", "default")
