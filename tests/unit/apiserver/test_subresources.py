"""Binding, status, scale and eviction subresources, and patches."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.client import errors
from services.client.client import Client
from tests.unit.apiserver.helpers import manifest, pod

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "pinnace/busybox:1.0", env: [{name: A, value: "1"}]}
      - {name: side, image: "pinnace/busybox:1.0"}
"""


async def test_binding(client: Client) -> None:
    await client.create(pod("p"))
    bound = await client.bind("p", "default", "node-1")
    assert bound.spec.node_name == "node-1"
    assert [(c.type, c.status) for c in bound.status.conditions] == [("PodScheduled", "True")]
    with pytest.raises(errors.ConflictError, match='already assigned to node "node-1"'):
        await client.bind("p", "default", "node-2")
    with pytest.raises(errors.NotFoundError):
        await client.bind("missing", "default", "node-1")


async def test_pod_spec_is_mostly_immutable(client: Client) -> None:
    created = await client.create(pod("frozen"))
    created.spec.containers[0].image = "pinnace/busybox:2.0"
    updated = await client.update(created)
    assert updated.spec.containers[0].image == "pinnace/busybox:2.0"
    updated.spec.restart_policy = "Never"
    with pytest.raises(errors.InvalidError, match="pod updates may not change fields"):
        await client.update(updated)


async def test_scale_subresource(client: Client) -> None:
    await client.create(manifest(DEPLOYMENT))
    scale = await client.get_scale("deployments", "web", "default")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    scaled = await client.scale("deploy", "web", 5, "default")
    assert scaled.spec.replicas == 5
    assert (await client.get("deployments", "web", "default")).spec.replicas == 5
    with pytest.raises(errors.ConflictError):
        await client.scale("deploy", "web", 1, "default", resource_version="1")
    with pytest.raises(errors.NotFoundError, match="scale"):
        await client.get_scale("pods", "x", "default")


async def test_a_scale_without_resource_version_wins_over_concurrent_status_writes(client: Client) -> None:
    # A controller writing status meanwhile (as the ReplicaSet controller does) must not make an
    # unconditional scale fail: the server retries its read-modify-write.
    await client.create(manifest(DEPLOYMENT))

    async def write_status(i: int) -> None:
        for _ in range(10):
            try:
                current = await client.get("deployments", "web", "default")
                current.status.observed_generation = i  # type: ignore[attr-defined]
                await client.update_status(current)
                return
            except errors.ConflictError:
                continue

    writers = [write_status(i) for i in range(30)]
    scales = [client.scale("deploy", "web", replicas, "default") for replicas in range(1, 31)]
    await asyncio.gather(*writers, *scales)
    assert 1 <= (await client.get("deployments", "web", "default")).spec.replicas <= 30  # type: ignore[attr-defined]


async def test_eviction_deletes_gracefully(client: Client) -> None:
    await client.create(pod("evictee", node="n1"))
    await client.evict("evictee", "default")
    marked = await client.get("pods", "evictee", "default")
    assert marked.metadata.deletion_timestamp.seconds > 0


async def test_strategic_merge_patch_merges_containers_by_name(client: Client) -> None:
    await client.create(manifest(DEPLOYMENT))
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "image": "pinnace/busybox:1.1", "env": [{"name": "B", "value": "2"}]}
                    ]
                }
            }
        }
    }
    patched = await client.patch("deployments", "web", patch, "default")
    containers = patched.spec.template.spec.containers
    assert [c.name for c in containers] == ["web", "side"]
    assert containers[0].image == "pinnace/busybox:1.1"
    assert [e.name for e in containers[0].env] == ["A", "B"]
    assert patched.metadata.generation == 2


async def test_merge_and_json_patch(client: Client) -> None:
    await client.create(manifest(DEPLOYMENT))
    merged = await client.patch(
        "deployments",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x:1"}]}}}},
        "default",
        patch_type="merge",
    )
    assert [c.name for c in merged.spec.template.spec.containers] == ["only"]
    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/labels", "value": {"team": "a"}},
    ]
    patched = await client.patch("deployments", "web", ops, "default", patch_type="json")
    assert patched.spec.replicas == 4 and patched.metadata.labels["team"] == "a"
    with pytest.raises(errors.BadRequestError, match="does not apply"):
        await client.patch(
            "deployments", "web", [{"op": "remove", "path": "/spec/nothing"}], "default", patch_type="json"
        )
    with pytest.raises(errors.InvalidError, match=r"spec\.replicas"):
        await client.patch("deployments", "web", {"spec": {"replicas": "many"}}, "default")
    with pytest.raises(errors.BadRequestError, match="not valid JSON"):
        await client.patch("deployments", "web", b"{nope", "default")


async def test_status_patch(client: Client) -> None:
    await client.create(pod("s"))
    patched = await client.patch(
        "pods",
        "s",
        json.dumps({"status": {"phase": "Running", "podIP": "10.244.1.5"}}),
        "default",
        subresource="status",
    )
    assert patched.status.phase == "Running" and patched.status.pod_ip == "10.244.1.5"
