"""The etcd backend on a real three-member cluster: losing a member (the very one the client
uses, or the leader) is invisible to the API apart from latency, and the member rejoins.

Every acknowledged write must survive, watches must resume on another member without loss or
duplicates, and the restarted member must catch up (a member-local read on it shows the
writes it missed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from pinnace.etcd.v3 import rpc_pb2, rpc_pb2_grpc
from services.apiserver.storage.etcd import EtcdStorage
from services.apiserver.storage.interface import StoreEvent
from tests.integration.etcd_cluster import EtcdCluster, require_etcd, start_etcd

pytestmark = pytest.mark.integration
PREFIX = "/pinnace-cluster-test"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    require_etcd()
    with start_etcd(tmp_path, members=3) as started:
        yield started


@pytest.fixture
async def store(cluster: EtcdCluster) -> AsyncIterator[EtcdStorage]:
    backend = EtcdStorage(cluster.endpoints, prefix=PREFIX)
    yield backend
    await backend.close()


async def member_local_get(endpoint: str, key: str) -> bytes | None:
    """A serializable Range: answered from that member's own data, so it shows whether the
    member itself has caught up (a linearizable read would be served through the leader)."""
    async with grpc.aio.insecure_channel(endpoint) as channel:
        kv = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
        response = await kv.Range(
            rpc_pb2.RangeRequest(key=(PREFIX + key).encode(), serializable=True), timeout=5
        )
    return response.kvs[0].value if response.kvs else None


async def wait_caught_up(endpoint: str, key: str, value: bytes, timeout: float = 15.0) -> None:
    async def poll() -> None:
        while await member_local_get(endpoint, key) != value:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def leader_index(cluster: EtcdCluster) -> int:
    async with grpc.aio.insecure_channel(cluster.endpoints[0]) as channel:
        maintenance = rpc_pb2_grpc.MaintenanceStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
        status = await maintenance.Status(rpc_pb2.StatusRequest(), timeout=5)
        members = rpc_pb2_grpc.ClusterStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
        listed = await members.MemberList(rpc_pb2.MemberListRequest(), timeout=5)
    leader = next(m for m in listed.members if status.leader == m.ID)
    return cluster.member_at(leader.clientURLs[0].removeprefix("http://"))


async def collect(store: EtcdStorage, start: int, count: int) -> list[StoreEvent]:
    events: list[StoreEvent] = []
    async for event in store.watch("/", start):
        events.append(event)
        if len(events) == count:
            break
    return events


async def test_kill_the_member_the_client_uses(cluster: EtcdCluster, store: EtcdStorage) -> None:
    kv = await store.create("/k", b"0")
    watcher = asyncio.create_task(collect(store, kv.mod_revision, 21))
    await asyncio.sleep(0.2)
    victim = cluster.member_at(store.active_endpoint)

    await asyncio.to_thread(cluster.kill, victim)
    for i in range(1, 21):
        kv = await store.update("/k", str(i).encode(), kv.mod_revision)
    assert store.active_endpoint != cluster.members[victim].endpoint
    got = await store.get("/k")
    assert got is not None and got.value == b"20"
    assert [item.value for item in (await store.list("/")).items] == [b"20"]

    events = await asyncio.wait_for(watcher, 20)
    assert [e.kv.value for e in events] == [str(i).encode() for i in range(21)]
    assert [e.revision for e in events] == sorted({e.revision for e in events})

    await asyncio.to_thread(cluster.restart, victim)
    await wait_caught_up(cluster.members[victim].endpoint, "/k", b"20")
    rejoined = EtcdStorage([cluster.members[victim].endpoint], prefix=PREFIX)
    try:
        written = await rejoined.update("/k", b"via-rejoined", kv.mod_revision)
    finally:
        await rejoined.close()
    got = await store.get("/k")
    assert got == written


async def test_kill_the_leader_under_concurrent_writes(cluster: EtcdCluster, store: EtcdStorage) -> None:
    acknowledged: list[str] = []
    stop = asyncio.Event()

    async def writer(worker: int) -> None:
        for i in range(200):
            if stop.is_set():
                return
            key = f"/w/{worker}/{i:03d}"
            await store.create(key, b"x")
            acknowledged.append(key)

    start = await store.current_revision() + 1
    writers = [asyncio.create_task(writer(n)) for n in range(4)]
    await asyncio.sleep(0.3)
    victim = await leader_index(cluster)
    await asyncio.to_thread(cluster.kill, victim)
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*writers), 30)

    listed = await store.list("/w/")
    assert sorted(acknowledged) == [item.key for item in listed.items]
    events = await asyncio.wait_for(collect(store, start, len(acknowledged)), 20)
    assert sorted(e.kv.key for e in events) == sorted(acknowledged)

    await asyncio.to_thread(cluster.restart, victim)
    await wait_caught_up(cluster.members[victim].endpoint, acknowledged[-1], b"x")
