"""ClusterIP and NodePort allocation: honoured, validated, released, never double-booked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.apiserver.server import APIServer
from services.client import errors
from services.client.client import Client
from tests.unit.apiserver.conftest import config_for
from tests.unit.apiserver.helpers import manifest


def service(name: str, *, cluster_ip: str = "", node_port: int = 0, kind: str = "ClusterIP") -> object:
    obj = manifest(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
        f"spec: {{type: {kind}, ports: [{{port: 80}}], selector: {{app: {name}}}}}\n"
    )
    obj.spec.cluster_ip = cluster_ip
    if node_port:
        obj.spec.ports[0].node_port = node_port
    return obj


async def test_cluster_ips(client: Client) -> None:
    auto = await client.create(service("auto"))
    assert auto.spec.cluster_ip.startswith("10.96.0.") and list(auto.spec.cluster_ips) == [
        auto.spec.cluster_ip
    ]
    wanted = "10.96.0.201" if auto.spec.cluster_ip == "10.96.0.200" else "10.96.0.200"
    chosen = await client.create(service("chosen", cluster_ip=wanted))
    assert chosen.spec.cluster_ip == wanted
    with pytest.raises(errors.InvalidError, match="provided IP is already allocated"):
        await client.create(service("dup", cluster_ip=wanted))
    with pytest.raises(errors.InvalidError, match="not in the valid range"):
        await client.create(service("far", cluster_ip="10.200.0.1"))
    headless = await client.create(service("headless", cluster_ip="None"))
    assert headless.spec.cluster_ip == "None"
    await client.delete("services", "chosen", "default")
    again = await client.create(service("again", cluster_ip=wanted))
    assert again.spec.cluster_ip == wanted
    chosen_ip = again.spec.cluster_ip
    again.spec.cluster_ip = "10.96.0.203" if auto.spec.cluster_ip == "10.96.0.202" else "10.96.0.202"
    with pytest.raises(errors.InvalidError, match="field is immutable"):
        await client.update(again)
    assert (await client.get("services", "again", "default")).spec.cluster_ip == chosen_ip


async def test_node_ports(client: Client) -> None:
    first = await client.create(service("np", kind="NodePort"))
    port = first.spec.ports[0].node_port
    assert 30000 <= port <= 30010
    with pytest.raises(errors.InvalidError, match="provided port is already allocated"):
        await client.create(service("np2", kind="NodePort", node_port=port))
    with pytest.raises(errors.InvalidError, match="30000-30010"):
        await client.create(service("np3", kind="NodePort", node_port=31000))
    first.spec.type = "ClusterIP"
    first.spec.ports[0].node_port = 0
    first.spec.external_traffic_policy = ""
    await client.update(first)
    reused = await client.create(service("np4", kind="NodePort", node_port=port))
    assert reused.spec.ports[0].node_port == port


async def test_failed_create_releases_what_it_took(client: Client) -> None:
    bad = service("bad", kind="NodePort", node_port=30005)
    bad.metadata.namespace = "missing-namespace"
    with pytest.raises(errors.NotFoundError):
        await client.create(bad)
    good = await client.create(service("good", kind="NodePort", node_port=30005))
    assert good.spec.ports[0].node_port == 30005


async def test_concurrent_creates_never_share_an_address(client: Client) -> None:
    created = await asyncio.gather(*(client.create(service(f"s{i}")) for i in range(20)))
    ips = [s.spec.cluster_ip for s in created]
    assert len(set(ips)) == 20


async def test_allocations_survive_restart(tmp_path: Path) -> None:
    first = APIServer(config_for(tmp_path))
    await first.start()
    api = Client.connect(f"127.0.0.1:{first.port}")
    taken = await api.create(service("kept", kind="NodePort"))
    await api.close()
    await first.stop(grace=0)
    second = APIServer(config_for(tmp_path))
    await second.start()
    api = Client.connect(f"127.0.0.1:{second.port}")
    try:
        with pytest.raises(errors.InvalidError, match="already allocated"):
            await api.create(service("clash", cluster_ip=taken.spec.cluster_ip))
        with pytest.raises(errors.InvalidError, match="already allocated"):
            await api.create(service("clash2", kind="NodePort", node_port=taken.spec.ports[0].node_port))
    finally:
        await api.close()
        await second.stop(grace=0)


async def test_health_check_node_port_for_local_load_balancers(client: Client) -> None:
    local = service("lb", kind="LoadBalancer")
    local.spec.external_traffic_policy = "Local"
    created = await client.create(local)
    health = created.spec.health_check_node_port
    assert 30000 <= health <= 30010 and health != created.spec.ports[0].node_port
    moved = await client.get("services", "lb", "default")
    moved.spec.health_check_node_port = 30001 if health != 30001 else 30002
    with pytest.raises(
        errors.InvalidError, match=r"spec\.healthCheckNodePort: Invalid value: \d+: field is immutable"
    ):
        await client.update(moved)
    clash = service("clash", kind="LoadBalancer")
    clash.spec.external_traffic_policy = "Local"
    clash.spec.health_check_node_port = health
    with pytest.raises(errors.InvalidError, match="provided port is already allocated"):
        await client.create(clash)
    # Cluster policy: no health check port, and the old one goes back to the pool.
    current = await client.get("services", "lb", "default")
    current.spec.external_traffic_policy = "Cluster"
    updated = await client.update(current)
    assert updated.spec.health_check_node_port == 0
    reuse = service("reuse", kind="NodePort", node_port=health)
    assert (await client.create(reuse)).spec.ports[0].node_port == health
    cluster = service("plain", kind="LoadBalancer")
    cluster.spec.health_check_node_port = 30009
    assert (await client.create(cluster)).spec.health_check_node_port == 0
