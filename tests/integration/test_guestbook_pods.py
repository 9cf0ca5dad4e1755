"""The guestbook's example pod templates on a real node (kubelet, CRI shim, CNI bridge): the
slave's start command replicates from the master at $REDIS_MASTER_SERVICE_HOST, and the
frontend stores a message through the master and reads it back through the slave.

No kube-proxy runs here, so the variables a Service would give point at the pods' own IPs;
the whole cluster with real Services is tests/e2e's subject.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pinnace.api.core.v1 import core_pb2
from services.machinery.manifests import Source, load
from tests.integration.kubelet.harness import REFERENCE_PLUGINS, Node, running

pytestmark = pytest.mark.integration

GUESTBOOK = Path(__file__).resolve().parents[2] / "examples" / "guestbook"


@pytest.fixture
async def node(docker_client: Any) -> AsyncIterator[Node]:
    if not (REFERENCE_PLUGINS / "bridge").is_file():
        pytest.skip("Debian's containernetworking-plugins are not installed")
    lab = Node(docker_client)
    try:
        await lab.start()
        yield lab
    finally:
        await lab.destroy()


def template_pod(node: Node, manifest: str, name: str, env: dict[str, str]) -> core_pb2.Pod:
    """A pod from the example controller's template, bound to the node, with extra variables."""
    path = GUESTBOOK / manifest
    (decoded,) = load(Source(str(path), path.read_text()))
    template = decoded.obj.spec.template  # type: ignore[attr-defined]
    pod = core_pb2.Pod()
    pod.metadata.CopyFrom(template.metadata)
    pod.metadata.name, pod.metadata.namespace = name, "default"
    pod.spec.CopyFrom(template.spec)
    pod.spec.node_name = node.name
    pod.spec.termination_grace_period_seconds = 2
    for key, value in env.items():
        pod.spec.containers[0].env.add(name=key, value=value)
    return pod


async def start(node: Node, pod: core_pb2.Pod) -> str:
    assert node.client is not None
    await node.client.create(pod)
    started = await node.wait_pod(pod.metadata.name, running, timeout=60)
    return str(started.status.pod_ip)


def in_node(node: Node, *argv: str) -> str:
    return node.ns_exec(*argv).stdout


async def until(node: Node, check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}\n{node.logs()}")
        await asyncio.sleep(0.2)


def guestbook(node: Node, ip: str, **query: str) -> Any:
    url = f"http://{ip}/guestbook.cgi?{urllib.parse.urlencode(query)}"
    return json.loads(in_node(node, "busybox", "wget", "-qO-", url))


async def test_example_templates_store_and_read_back_through_real_redis(node: Node) -> None:
    master_ip = await start(node, template_pod(node, "redis-master-controller.yaml", "redis-master", {}))
    slave_ip = await start(
        node,
        template_pod(
            node, "redis-slave-controller.yaml", "redis-slave", {"REDIS_MASTER_SERVICE_HOST": master_ip}
        ),
    )
    frontend_ip = await start(
        node,
        template_pod(
            node,
            "frontend-controller.yaml",
            "frontend",
            {"REDIS_MASTER_SERVICE_HOST": master_ip, "REDIS_SLAVE_SERVICE_HOST": slave_ip},
        ),
    )

    def synced() -> bool:
        info = in_node(node, "redis-cli", "-h", slave_ip, "INFO", "replication")
        return f"master_host:{master_ip}" in info and "master_link_status:up" in info

    await until(node, synced, "the slave never synced with the master")
    assert guestbook(node, frontend_ip, cmd="set", key="messages", value="hello,from pods") == {
        "message": "Updated"
    }
    assert in_node(node, "redis-cli", "-h", master_ip, "GET", "messages").strip() == "hello,from pods"
    await until(
        node,
        lambda: guestbook(node, frontend_ip, cmd="get", key="messages") == {"data": "hello,from pods"},
        "the message never came back through the slave",
    )
