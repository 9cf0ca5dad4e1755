"""HostGateway against the in-process apiserver and a routing-table double."""

from __future__ import annotations

import asyncio
import contextlib
import errno

import pytest

from services.hostgw.controller import HostGateway, HostGWConfig
from services.hostgw.routes import DEVICE, UNREACHABLE, VIA, Route
from tests.unit.apiserver.conftest import client, server
from tests.unit.hostgw.test_routes import node

__all__ = ["client", "server"]


class FakeTable:
    """The kernel's main table, as far as host-gw's protocol goes; refuses gateways off 192.168.56.0/24."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.devices: set[str] = set()
        self.writes = 0

    async def owned(self) -> dict[str, Route]:
        return dict(self.routes)

    async def replace(self, route: Route) -> None:
        if route.kind == VIA and not route.gateway.startswith("192.168.56."):
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        if route.kind == DEVICE and route.device not in self.devices:
            raise OSError(errno.ENODEV, "no such device")
        self.writes += 1
        self.routes[route.dst] = route

    async def delete(self, dst: str) -> None:
        self.writes += 1
        self.routes.pop(dst, None)

    async def ensure_device(self, name: str) -> None:
        self.devices.add(name)

    async def close(self) -> None:
        pass


async def eventually(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(client, table, **config):
    gw = HostGateway(client, table, HostGWConfig(node_name="n1", resync_seconds=0.2, **config))
    task = asyncio.create_task(gw.run())
    try:
        yield gw
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def via(table: FakeTable) -> dict[str, str]:
    return {dst: r.gateway for dst, r in table.routes.items() if r.kind == VIA}


async def test_routes_follow_nodes_as_they_come_change_and_go(client):
    table = FakeTable()
    await client.create(node("n1", "10.244.1.0/24", "192.168.56.11"))
    await client.create(node("n2", "10.244.2.0/24", "192.168.56.12"))
    async with running(client, table):
        await eventually(lambda: via(table) == {"10.244.2.0/24": "192.168.56.12"})
        assert table.routes["10.244.0.0/16"] == Route("10.244.0.0/16", UNREACHABLE)
        assert table.routes["10.96.0.0/12"] == Route(
            "10.96.0.0/12", DEVICE, device="pinnace-svc", src="192.168.56.11"
        )
        await client.create(node("n3", "10.244.3.0/24", "192.168.56.13"))
        await eventually(lambda: via(table).get("10.244.3.0/24") == "192.168.56.13")
        moved = await client.get("nodes", "n2")
        moved.status.addresses[1].address = "192.168.56.22"
        await client.update_status(moved)
        await eventually(lambda: via(table).get("10.244.2.0/24") == "192.168.56.22")
        await client.delete("nodes", "n3")
        await eventually(lambda: via(table) == {"10.244.2.0/24": "192.168.56.22"})


async def test_routes_of_nodes_deleted_while_down_are_removed_and_others_kept(client):
    table = FakeTable()
    table.routes["10.244.5.0/24"] = Route("10.244.5.0/24", VIA, gateway="192.168.56.15")
    await client.create(node("n1", "10.244.1.0/24", "192.168.56.11"))
    await client.create(node("n2", "10.244.2.0/24", "192.168.56.12"))
    async with running(client, table):
        await eventually(lambda: via(table) == {"10.244.2.0/24": "192.168.56.12"})


async def test_a_refused_route_does_not_stop_the_others_and_is_retried(client):
    table = FakeTable()
    await client.create(node("n1", "10.244.1.0/24", "192.168.56.11"))
    await client.create(node("far", "10.244.8.0/24", "10.1.1.1"))
    await client.create(node("n2", "10.244.2.0/24", "192.168.56.12"))
    async with running(client, table) as gw:
        await eventually(lambda: via(table) == {"10.244.2.0/24": "192.168.56.12"})
        await eventually(lambda: gw.failures == 1)
        far = await client.get("nodes", "far")
        far.status.addresses[1].address = "192.168.56.18"
        await client.update_status(far)
        await eventually(lambda: via(table).get("10.244.8.0/24") == "192.168.56.18")
        await eventually(lambda: gw.failures == 0)


async def test_a_route_removed_by_hand_comes_back_at_the_resync(client):
    table = FakeTable()
    await client.create(node("n2", "10.244.2.0/24", "192.168.56.12"))
    async with running(client, table, node_ip="192.168.56.11") as gw:
        await eventually(lambda: "10.244.2.0/24" in table.routes)
        gw.synced.clear()
        del table.routes["10.244.2.0/24"]
        await eventually(lambda: "10.244.2.0/24" in table.routes)


async def test_an_idle_cluster_causes_no_writes(client):
    table = FakeTable()
    await client.create(node("n1", "10.244.1.0/24", "192.168.56.11"))
    await client.create(node("n2", "10.244.2.0/24", "192.168.56.12"))
    async with running(client, table) as gw:
        await eventually(lambda: "10.244.2.0/24" in table.routes)
        await gw.synced.wait()
        writes = table.writes
        for _ in range(3):  # three resyncs
            gw.synced.clear()
            await gw.synced.wait()
        assert table.writes == writes


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"node_name": ""}, "node's name"),
        ({"node_name": "n1", "cluster_cidr": "10.244.0.0"}, "--cluster-cidr '10.244.0.0' is not a CIDR"),
        ({"node_name": "n1", "cluster_cidr": "pods"}, "--cluster-cidr 'pods' is not a CIDR"),
        ({"node_name": "n1", "service_cidr": "fd00::/108"}, "--service-cidr 'fd00::/108' is not IPv4"),
        ({"node_name": "n1", "service_device": "a-very-long-device-name"}, "--service-device"),
    ],
)
def test_bad_configuration_is_refused_with_the_flag_named(fields, message):
    with pytest.raises(ValueError, match=message):
        HostGWConfig(**fields)
