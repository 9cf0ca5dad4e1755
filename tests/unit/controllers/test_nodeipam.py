from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.controllers.nodeipam import CIDRSet, NodeIpamController
from tests.unit.controllers.fakes import Harness, until


def node(name: str, cidr: str = "") -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = name
    n.spec.pod_cidr = cidr
    return n


async def cidrs(client: Client) -> dict[str, str]:
    return {n.metadata.name: n.spec.pod_cidr for n in (await client.list("nodes")).items}


async def test_every_node_gets_a_distinct_cidr_and_deleted_ones_are_reused(
    client: Client, harness: Harness
) -> None:
    await client.create(node("pre", "10.244.0.0/24"))
    harness.add(NodeIpamController)
    await harness.start()
    for name in ("a", "b", "c"):
        await client.create(node(name))

    async def all_assigned() -> bool:
        return all(await_values(await cidrs(client)))

    await until(all_assigned)
    got = await cidrs(client)
    assert len(set(got.values())) == 4
    assert got["pre"] == "10.244.0.0/24"
    assert all(c.endswith("/24") and c.startswith("10.244.") for c in got.values())
    n = await client.get("nodes", "a")
    assert list(n.spec.pod_cidrs) == [n.spec.pod_cidr]
    await client.delete("nodes", "b")
    freed = got["b"]
    await client.create(node("d"))

    async def d_assigned() -> bool:
        return bool((await cidrs(client)).get("d"))

    await until(d_assigned)
    assert (await cidrs(client))["d"] not in {got["a"], got["c"], got["pre"]}
    _ = freed


def await_values(mapping: dict[str, str]) -> list[str]:
    return list(mapping.values())


def test_cidr_set_exhaustion_and_release() -> None:
    pool = CIDRSet("10.0.0.0/30", 31)
    first, second = pool.allocate(), pool.allocate()
    assert {first, second} == {"10.0.0.0/31", "10.0.0.2/31"}
    assert pool.allocate() is None
    pool.release("10.0.0.2/31")
    assert pool.allocate() == "10.0.0.2/31"
    assert not pool.occupy("192.168.0.0/31")
