"""The notes' guestbook on 1 master + 2 nodes: real Redis with real replication, service
discovery through the environment, the frontend reachable from outside at every node's
address on NodePort 30001; then the control plane dies piece by piece under traffic.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.support import (
    EXAMPLES,
    Poller,
    answering,
    endpoint_ips,
    eventually,
    http_get,
    namespace_gone,
    ready_pods,
)

pytestmark = pytest.mark.e2e

NAMESPACE = "guestbook"
NODE_PORT = 30001
# The notes' order: each Service exists before the pods that find it through the environment.
MANIFESTS = [
    "redis-master-controller.yaml",
    "redis-master-service.yaml",
    "redis-slave-controller.yaml",
    "redis-slave-service.yaml",
    "frontend-controller.yaml",
    "frontend-service.yaml",
]
TIERS = {"name=redis-master": 1, "name=redis-slave": 2, "name=frontend": 3}


def guestbook_call(lab: Any, ip: str, **query: str) -> dict[str, Any]:
    status, body = http_get(lab, "client", ip, NODE_PORT, "/guestbook.cgi?" + urllib.parse.urlencode(query))
    if status != 200:
        raise AssertionError(f"{ip}:{NODE_PORT} answered {status}: {body.strip()}")
    answer: dict[str, Any] = json.loads(body)
    return answer


async def _deploy(lab: Any) -> None:
    lab.pinctl("create", "namespace", NAMESPACE)
    for manifest in MANIFESTS:
        lab.pinctl("apply", "-n", NAMESPACE, "-f", str(EXAMPLES / "guestbook" / manifest))
    async with lab.api_client() as client:
        for selector, count in TIERS.items():
            await ready_pods(client, NAMESPACE, selector, count, timeout=180)
        for service, count in (("redis-master", 1), ("redis-slave", 2), ("frontend", 3)):
            await eventually(
                lambda s=service, n=count: _has_endpoints(client, s, n), f"{count} endpoints of {service}"
            )
    for node in lab.nodes:
        await answering(lambda ip=node.ip: _front_page(lab, ip), f"the guestbook on {node.ip}:{NODE_PORT}")


def _front_page(lab: Any, ip: str) -> str:
    status, page = http_get(lab, "client", ip, NODE_PORT, "/")
    if status != 200:
        raise AssertionError(f"{ip}:{NODE_PORT} answered {status}")
    return page


async def _has_endpoints(client: Any, service: str, count: int) -> bool:
    return len(await endpoint_ips(client, NAMESPACE, service)) == count


async def _remove(lab: Any) -> None:
    lab.pinctl("delete", "namespace", NAMESPACE)
    async with lab.api_client() as client:
        await namespace_gone(client, NAMESPACE)


@pytest.fixture(scope="module")
def guestbook(lab: Any) -> Iterator[Any]:
    asyncio.run(_deploy(lab))
    try:
        yield lab
    finally:
        asyncio.run(_remove(lab))


def test_guestbook_stores_and_reads_back_through_every_node(guestbook: Any) -> None:
    lab = guestbook
    for node in lab.nodes:
        assert "<title>Guestbook</title>" in _front_page(lab, node.ip)
    for node in lab.nodes:
        message = f"hello via {node.ip},from the client"
        assert guestbook_call(lab, node.ip, cmd="set", key="messages", value=message) == {
            "message": "Updated"
        }
        # Read through every node: the slaves have it once replication caught up.
        for reader in lab.nodes:
            asyncio.run(
                eventually(
                    lambda ip=reader.ip, m=message: _reads(lab, ip, m),
                    f"{message!r} read back through {reader.ip}",
                    timeout=30,
                )
            )


async def _reads(lab: Any, ip: str, message: str) -> bool:
    return guestbook_call(lab, ip, cmd="get", key="messages") == {"data": message}


async def test_redis_slaves_replicate_from_the_master_found_by_environment(guestbook: Any) -> None:
    lab = guestbook
    async with lab.api_client() as client:
        (master,) = await ready_pods(client, NAMESPACE, "name=redis-master", 1)
        slaves = await ready_pods(client, NAMESPACE, "name=redis-slave", 2)
        master_service = await client.get("services", "redis-master", NAMESPACE)
    info = lab.exec("node1", ["redis-cli", "-h", master.status.pod_ip, "INFO", "replication"]).stdout
    assert "role:master" in info and "connected_slaves:2" in info, info
    for slave in slaves:
        info = lab.exec("node1", ["redis-cli", "-h", slave.status.pod_ip, "INFO", "replication"]).stdout
        # The slave dialled the master's ClusterIP from REDIS_MASTER_SERVICE_HOST.
        assert f"master_host:{master_service.spec.cluster_ip}" in info, info
        assert "master_link_status:up" in info, info


async def test_control_plane_killed_in_turn_while_the_guestbook_serves(guestbook: Any) -> None:
    lab = guestbook
    wanted = ("apiserver", "scheduler", "controller-manager")
    missing = [c for c in wanted if c not in lab.components]
    assert not missing, f"the e2e lab must run the control plane as separate processes: {lab.components}"
    message = "written before the control plane died"
    guestbook_call(lab, lab.nodes[0].ip, cmd="set", key="messages", value=message)
    addresses = [n.ip for n in lab.nodes]
    turn = iter(range(1_000_000))

    def read() -> str:
        ip = addresses[next(turn) % len(addresses)]
        return str(guestbook_call(lab, ip, cmd="get", key="messages")["data"])

    async with lab.api_client() as client:
        await eventually(lambda: _reads(lab, addresses[-1], message), "the message replicated", 30)
        with Poller(read, interval=0.1, max_requests=2500, max_seconds=400) as poller:
            for component in wanted:
                lab.kill(component)
                before = len(poller.answers)
                await eventually(
                    lambda n=before + 20: poller.at_least(n), f"traffic while {component} is down", 60
                )
                lab.start(component)
                await eventually(lambda: _lists_nodes(client), "the apiserver to answer again", 60)
            # Everything resumes: a new frontend is scheduled, created, started and served.
            lab.pinctl("scale", "-n", NAMESPACE, "rc/frontend", "--replicas=4")
            await ready_pods(client, NAMESPACE, "name=frontend", 4, timeout=120)
            await eventually(lambda: _has_endpoints(client, "frontend", 4), "the new frontend's endpoint")
            lab.pinctl("scale", "-n", NAMESPACE, "rc/frontend", "--replicas=3")
            await ready_pods(client, NAMESPACE, "name=frontend", 3, timeout=120)
            before = len(poller.answers)
            await eventually(lambda: poller.at_least(before + 20), "traffic after the restarts", 60)
    assert poller.failures == [], poller.summary()
    assert set(poller.counts()) == {message}, poller.summary()


async def _lists_nodes(client: Any) -> bool:
    return bool((await client.list("nodes")).items)
