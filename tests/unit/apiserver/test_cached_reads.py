"""Reads the apiserver answers from its watch cache, and why they stay correct.

A consistent list (no resourceVersion) is served from the cache only once the cache has seen
every change up to the store's current revision; a read-modify-write (binding, patch, scale)
starts from the cached copy but is conditional on its revision, so a stale copy costs a retry,
never a lost update.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.apiserver import errors
from services.apiserver.server import APIServer
from services.client.client import Client
from services.machinery.kinds import REGISTRY
from tests.unit.apiserver.helpers import manifest, pod


async def test_a_consistent_list_is_served_from_the_cache_once_it_caught_up(
    server: APIServer, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_store_lists(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the list went to the store")

    monkeypatch.setattr(server.registry.storage, "list", no_store_lists)
    # Interleave writes of two kinds, so the pods cache is never the newest thing in the store.
    for i in range(20):
        await client.create(pod(f"p{i}"))
        config = await client.create(
            manifest(f"{{apiVersion: v1, kind: ConfigMap, metadata: {{name: c{i}}}}}")
        )
        listed = await client.list("pods", "default")
        assert len(listed.items) == i + 1
        assert int(listed.resource_version) >= int(config.metadata.resource_version)


async def test_a_stale_cached_copy_costs_a_retry_not_an_update(server: APIServer, client: Client) -> None:
    registry = server.registry
    pods = REGISTRY.by_name("pods")
    created, key, stale = await _cached_copy(server, client, "web")
    relabelled = created
    relabelled.metadata.labels["tier"] = "front"
    await client.update(relabelled)
    registry.caches["pods"].objects[key] = stale  # as if the cache had not seen the update yet

    def bind(obj: Any) -> None:
        obj.spec.node_name = "node-1"

    bound: Any = await registry.update_with(pods, "default", "web", bind, subresource="binding")
    assert bound.spec.node_name == "node-1"
    assert bound.metadata.labels["tier"] == "front"  # the update the stale copy missed survives
    stored = await client.get("pods", "web", "default")
    assert (stored.spec.node_name, stored.metadata.labels["tier"]) == ("node-1", "front")


async def test_a_mutation_refused_on_a_stale_copy_is_judged_on_the_current_state(
    server: APIServer, client: Client
) -> None:
    registry = server.registry
    pods = REGISTRY.by_name("pods")
    _, key, stale = await _cached_copy(server, client, "api")
    stale.metadata.labels["phase"] = "old"  # only the cache's copy has it
    registry.caches["pods"].objects[key] = stale

    def relabel(obj: Any) -> None:
        if obj.metadata.labels.get("phase") == "old":
            raise errors.conflict(pods, "api", "refused on the stale copy")
        obj.metadata.labels["phase"] = "new"

    updated: Any = await registry.update_with(pods, "default", "api", relabel)
    assert updated.metadata.labels["phase"] == "new"


async def _cached_copy(server: APIServer, client: Client, name: str) -> tuple[Any, str, Any]:
    """Create pod `name`; once the cache has it, its cache key and a copy of the cached object."""
    created = await client.create(pod(name))
    key = server.registry.key(REGISTRY.by_name("pods"), "default", name)
    await _wait_cached(server, key, created.metadata.resource_version)
    stale: Any = type(created)()
    stale.CopyFrom(server.registry.caches["pods"].objects[key])
    return created, key, stale


async def _wait_cached(server: APIServer, key: str, revision: str) -> None:
    cache = server.registry.caches["pods"]
    for _ in range(200):
        obj = cache.objects.get(key)
        if obj is not None and obj.metadata.resource_version == revision:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{key} never reached the cache at {revision}")
