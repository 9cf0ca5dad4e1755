"""The apiserver on a real etcd: the API semantics hold, and several apiservers sharing one
3-member cluster serve the same state, never double-book allocations, and keep serving when
an etcd member dies."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.apiserver.server import APIServer, Config
from services.client import errors
from services.client.client import Client
from tests.integration.etcd_cluster import EtcdCluster, require_etcd, start_etcd
from tests.unit.apiserver.helpers import manifest, pod

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    require_etcd()
    with start_etcd(tmp_path_factory.mktemp("etcd3"), members=3) as cluster:
        yield cluster


@pytest.fixture
async def apiservers(etcd: EtcdCluster) -> AsyncIterator[list[tuple[APIServer, Client]]]:
    prefix = f"/pinnace-{uuid.uuid4().hex[:8]}"
    running: list[tuple[APIServer, Client]] = []
    for i in range(2):
        config = Config(
            listen="127.0.0.1:0",
            storage="etcd",
            etcd_servers=etcd.endpoints,
            etcd_prefix=prefix,
            advertise_address=f"127.0.0.{i + 1}",
            service_cidr="10.96.0.0/24",
        )
        server = APIServer(config)
        await server.start()
        running.append((server, Client.connect(f"127.0.0.1:{server.port}", timeout=30)))
    yield running
    for server, client in running:
        await client.close()
        await server.stop(grace=0)


def service(name: str) -> object:
    return manifest(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{ports: [{{port: 80}}]}}\n"
    )


async def test_two_apiservers_share_state_and_allocations(apiservers: list[tuple[APIServer, Client]]) -> None:
    (_, a), (_, b) = apiservers
    endpoints = await a.get("endpoints", "kubernetes", "default")
    assert {addr.ip for addr in endpoints.subsets[0].addresses} == {"127.0.0.1", "127.0.0.2"}
    created = await a.create(pod("shared"))
    assert (await b.get("pods", "shared", "default")).metadata.uid == created.metadata.uid

    seen: list[str] = []

    async def watch() -> None:
        async for event in b.watch("pods", "default", resource_version=created.metadata.resource_version):
            seen.append(event.obj.metadata.name)
            return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.3)
    await a.create(pod("from-a"))
    await asyncio.wait_for(watcher, 10)
    assert seen == ["from-a"]

    results = await asyncio.gather(
        *(client.create(service(f"s{i}-{n}")) for n, client in enumerate((a, b)) for i in range(10))
    )
    ips = [s.spec.cluster_ip for s in results]
    assert len(set(ips)) == len(ips) == 20

    stale = await a.get("pods", "shared", "default")
    fresh = await b.get("pods", "shared", "default")
    fresh.metadata.labels["by"] = "b"
    await b.update(fresh)
    stale.metadata.labels["by"] = "a"
    with pytest.raises(errors.ConflictError):
        await a.update(stale)


async def test_api_keeps_serving_when_an_etcd_member_dies(
    apiservers: list[tuple[APIServer, Client]], etcd: EtcdCluster
) -> None:
    (_, a), _ = apiservers
    await a.create(pod("before"))
    victim = etcd.member_at(etcd.endpoints[0])
    etcd.kill(victim)
    try:
        await a.create(pod("during"))
        names = {p.metadata.name for p in (await a.list("pods", "default")).items}
        assert {"before", "during"} <= names
    finally:
        etcd.restart(victim)
    await a.create(pod("after"))


async def test_compacted_watch_is_expired_on_etcd(
    apiservers: list[tuple[APIServer, Client]], tmp_path: Path
) -> None:
    (server, a), _ = apiservers
    old = await a.create(pod("old"))
    for i in range(3):
        await a.create(pod(f"n{i}"))
    await server.storage.compact(await server.storage.current_revision())
    server.registry.caches["pods"].window_start = 10**12  # force the request past the cache's window
    with pytest.raises(errors.ExpiredError):
        async for _ in a.watch("pods", "default", resource_version=old.metadata.resource_version):
            break
