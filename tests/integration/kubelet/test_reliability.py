"""Failures the node must survive: kill -9 of the kubelet with 20 pods running (nothing is
recreated, statuses stay right, deletions requested meanwhile are carried out), a CRI shim
restart (nothing terminates), the apiserver going away (pods keep running; the kubelet
catches up). The outage lasts the issue's 60 s: longer than the informer's reconnect back-off
cap (30 s), so the kubelet has given up and retried at least once before the apiserver returns."""

from __future__ import annotations

import asyncio
import signal

import pytest

from services.client.errors import NotFoundError
from tests.integration.kubelet.harness import Node, container, running

pytestmark = pytest.mark.integration

PODS = 20
OUTAGE_SECONDS = 60


def _running_ids(node: Node) -> set[str]:
    return {c["Id"] for c in node.containers()}


async def _gone(node: Node, name: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            await node.client.get("pods", name, "default")
        except NotFoundError:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"pod {name} still exists\n{node.logs()}")


async def test_kubelet_kill9_shim_restart_apiserver_outage(node: Node) -> None:
    client = node.client
    for i in range(PODS):
        await client.create(node.pod(f"p{i}", container("c", "sleep", "3600")))
    for i in range(PODS):
        await node.wait_pod(f"p{i}", running, timeout=180)
    before = _running_ids(node)
    assert len(before) == 2 * PODS  # pause + app

    # kill -9 the kubelet, delete a pod while it is down, restart it
    node.stop_kubelet(signal.SIGKILL)
    await client.delete("pods", "p0", "default")
    node.start_kubelet("--register-node", "false")
    await _gone(node, "p0")
    for i in range(1, PODS):
        pod = await node.wait_pod(f"p{i}", running)
        assert pod.status.container_statuses[0].restart_count == 0
    after = _running_ids(node)
    assert len(after) == 2 * (PODS - 1)
    assert after <= before, "a container was recreated after the kubelet restart"

    # restart the CRI shim: nothing terminates
    node.stop_shim()
    node.start_shim()
    await asyncio.sleep(3)
    assert _running_ids(node) == after
    pod = await node.wait_pod("p1", running)
    assert pod.status.container_statuses[0].restart_count == 0

    # the apiserver goes away; pods keep running; the kubelet catches up when it is back
    node.apiserver.kill()
    await asyncio.sleep(OUTAGE_SECONDS)
    assert _running_ids(node) == after
    await node.apiserver.start(timeout=60)
    await client.delete("pods", "p1", "default")
    await client.create(node.pod("late", container("c", "sleep", "3600")))
    await node.wait_pod("late", running, timeout=90)
    await _gone(node, "p1", timeout=90)
    now = _running_ids(node)
    assert len(now) == 2 * (PODS - 1), "p1 went, late came"
    assert len(after - now) == 2, "only p1's pause and app container may have gone"
