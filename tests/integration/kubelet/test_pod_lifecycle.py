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


def _state(pod, name: str = "c"):
    return next(s for s in pod.status.container_statuses if s.name == name)


async def test_restart_policy_backoff_and_probes(node: Node) -> None:
    client = node.client
    crash = node.pod("crash", container("c", "sh", "-c", "sleep 1; exit 3"))
    await client.create(crash)
    once = node.pod("once", container("c", "sh", "-c", "exit 0"), restart_policy="Never")
    await client.create(once)
    failing = node.pod("failing", container("c", "sh", "-c", "exit 2"), restart_policy="Never")
    await client.create(failing)
    live = container("c", "sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 600")
    live.liveness_probe.exec.command.extend(["cat", "/tmp/healthy"])
    live.liveness_probe.period_seconds = 1
    live.liveness_probe.failure_threshold = 1
    live.liveness_probe.timeout_seconds = 2
    await client.create(node.pod("live", live))
    ready = container("c", "sh", "-c", "touch /tmp/ready; sleep 600")
    ready.readiness_probe.exec.command.extend(["cat", "/tmp/ready"])
    ready.readiness_probe.period_seconds = 1
    ready.readiness_probe.failure_threshold = 1
    await client.create(node.pod("ready", ready))

    await node.wait_pod("once", lambda p: p.status.phase == "Succeeded")
    pod = await node.wait_pod("failing", lambda p: p.status.phase == "Failed")
    assert _state(pod).state.terminated.exit_code == 2
    assert _state(pod).state.terminated.reason == "Error"
    pod = await node.wait_pod(
        "crash",
        lambda p: _state(p).restart_count >= 2 and _state(p).state.waiting.reason == "CrashLoopBackOff",
    )
    assert _state(pod).last_state.terminated.exit_code == 3
    assert pod.status.phase == "Running"
    pod = await node.wait_pod("live", lambda p: _state(p).restart_count >= 1)
    pod = await node.wait_pod("ready", lambda p: condition(p, "Ready") == "True")
    cid = _state(pod).container_id.split("://")[1]
    node.docker.api.exec_start(node.docker.api.exec_create(cid, ["rm", "/tmp/ready"]))
    pod = await node.wait_pod("ready", lambda p: condition(p, "Ready") == "False")
    assert _state(pod).state.HasField("running") and not _state(pod).ready
    events = await client.list("events", "default")
    reasons = {(e.involved_object.name, e.reason) for e in events.items}
    assert ("live", "Unhealthy") in reasons and ("crash", "BackOff") in reasons
