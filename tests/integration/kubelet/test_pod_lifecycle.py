"""A pod's life on a real node: it starts with an IP, its status is correct, probes work,
containers restart per policy with back-off, and deletion is graceful and confirmed."""

from __future__ import annotations

import asyncio

import pytest

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.client.errors import NotFoundError
from tests.integration.kubelet.harness import Node, condition, container, running

pytestmark = pytest.mark.integration


async def test_pod_runs_and_reports_status(node: Node) -> None:
    client = node.client
    web = container(
        "web", "serve", "8080", ports=[core_pb2.ContainerPort(container_port=8080, protocol="TCP")]
    )
    web.env.add(name="MESSAGE", value="hello")
    web.readiness_probe.http_get.path = "/"
    web.readiness_probe.http_get.port.CopyFrom(meta_pb2.IntOrString(int_val=8080))
    web.readiness_probe.period_seconds = 1
    pod = await client.create(node.pod("web", web))
    pod = await node.wait_pod("web", lambda p: running(p) and condition(p, "Ready") == "True")
    assert pod.status.pod_ip.startswith(f"10.244.{node.octet}.")
    assert pod.status.host_ip == node.gateway
    status = pod.status.container_statuses[0]
    assert status.ready and status.restart_count == 0 and status.container_id.startswith("docker://")
    assert {c.type for c in pod.status.conditions} >= {
        "PodScheduled",
        "Initialized",
        "ContainersReady",
        "Ready",
    }
    reply = node.ns_exec("wget", "-qO-", f"http://{pod.status.pod_ip}:8080/").stdout
    assert reply.strip() == "web hello"
    nodeobj = await node.wait_node(
        lambda n: any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
    )
    assert nodeobj.status.daemon_endpoints.kubelet_endpoint.port == node.node_api_port

    await client.delete("pods", "web", "default")
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        try:
            await client.get("pods", "web", "default")
        except NotFoundError:
            break
        await asyncio.sleep(0.25)
    else:
        raise AssertionError(f"pod not deleted\n{node.logs()}")
    await asyncio.sleep(0.5)
    assert node.containers(running_only=False) == []
