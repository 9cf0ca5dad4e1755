"""A node drops off the lab LAN: it goes NotReady after the lab's node-monitor grace period, its
pods are evicted and come back on the other node, and the Service keeps answering through the
surviving node. Then the link comes back, the node is Ready again and its stale pods leave.

Between the cut and the moment the Endpoints drop the lost node's pods, requests the proxies
send to those pods fail, exactly as in Kubernetes (the grace period is how long a silent node
is given); the test asserts that the Service answered throughout that window and that no request
sent after the surviving node's proxy dropped those pods from its rules fails.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import (
    FAST_EVICTION,
    Poller,
    answering,
    endpoint_ips,
    eventually,
    http_get,
    is_ready,
    namespace,
    node_ready,
    pods,
    proxies_route_to,
    ready_pods,
)

pytestmark = pytest.mark.e2e

NODE_PORT = 30002
REPLICAS = 4


def manifest(tmp_path: Path) -> str:
    """A Deployment spread over both nodes, with fast eviction, behind a NodePort Service."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "survivor"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "survivor"}},
            "template": {
                "metadata": {"labels": {"app": "survivor"}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "tolerations": FAST_EVICTION,
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "topologyKey": "kubernetes.io/hostname",
                                        "labelSelector": {"matchLabels": {"app": "survivor"}},
                                    },
                                }
                            ]
                        }
                    },
                    "containers": [
                        {
                            "name": "web",
                            "image": "pinnace/busybox:1.0",
                            "command": ["serve", "80"],
                            "env": [{"name": "MESSAGE", "value": "survivor"}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1},
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "survivor"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "survivor"},
            "ports": [{"port": 80, "nodePort": NODE_PORT}],
        },
    }
    path = tmp_path / "survivor.yaml"
    path.write_text("\n---\n".join(json.dumps(doc) for doc in (deployment, service)))
    return str(path)


async def test_pods_of_a_lost_node_come_back_on_the_other(lab: Any, tmp_path: Path) -> None:
    lost, survivor = lab.nodes[0], lab.nodes[1]
    async with lab.api_client() as client, namespace(client, "node-failure") as ns:
        lab.pinctl("apply", "-n", ns, "-f", manifest(tmp_path))
        before = await ready_pods(client, ns, "app=survivor", REPLICAS)
        on_lost = {p.metadata.name for p in before if p.spec.node_name == lost.node_name}
        assert on_lost and len(on_lost) < REPLICAS, f"pods not spread: {[p.spec.node_name for p in before]}"

        def request() -> str:
            status, body = http_get(lab, "client", survivor.ip, NODE_PORT, timeout=1.0)
            if status != 200:
                raise AssertionError(f"answered {status}")
            return body.split()[-1]

        pod_ips = {p.status.pod_ip for p in before}
        await eventually(lambda: _endpoints_are(client, ns, pod_ips), "the Endpoints to list every pod")
        await answering(request, f"the Service to answer on {survivor.ip}:{NODE_PORT}")
        try:
            with Poller(request, interval=0.1, max_requests=3000, max_seconds=300) as poller:
                await eventually(lambda: poller.at_least(10), "answers before the cut", 30)
                assert poller.failures == [], poller.summary()
                cut_at = time.monotonic()
                lab.cut_link(lost.name)

                async def not_ready() -> bool:
                    return await node_ready(client, lost.node_name) != "True"

                await eventually(not_ready, f"{lost.node_name} to go NotReady", timeout=120)

                async def moved() -> list[Any] | None:
                    live = [
                        p
                        for p in await pods(client, ns, "app=survivor")
                        if not p.metadata.deletion_timestamp.seconds
                    ]
                    home = all(p.spec.node_name == survivor.node_name and is_ready(p) for p in live)
                    return live if len(live) == REPLICAS and home else None

                after = await eventually(moved, f"every pod back on {survivor.node_name}", timeout=180)
                ips = {p.status.pod_ip for p in after}
                await eventually(
                    lambda: _endpoints_are(client, ns, ips), "the Endpoints to list only the moved pods"
                )
                settled_at = await proxies_route_to(lab, [survivor.name], ns, "survivor", ips)
                await eventually(
                    lambda: poller.sent_at_least(40, settled_at), "answers after the fail-over", 60
                )
            window = poller.sent_between(cut_at, settled_at)
            assert any(a.ok for a in window), f"the Service never answered while {lost.name} was lost"
            assert [a for a in poller.sent_since(settled_at) if not a.ok] == [], poller.summary()
            print(
                f"node failure: {len([a for a in window if not a.ok])} of {len(window)} requests failed "
                f"before {survivor.name}'s proxy dropped {lost.node_name}'s pods"
            )
        finally:
            lab.restore_link(lost.name)
            lab.wait_nodes_ready(timeout=120)

        async def stale_pods_gone() -> bool:
            return all(p.spec.node_name != lost.node_name for p in await pods(client, ns, "app=survivor"))

        await eventually(stale_pods_gone, f"{lost.node_name} to confirm its evicted pods' deletion", 120)


async def _endpoints_are(client: Any, ns: str, ips: set[str]) -> bool:
    return await endpoint_ips(client, ns, "survivor") == ips
