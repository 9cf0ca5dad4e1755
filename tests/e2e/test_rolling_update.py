"""The notes' client-side rolling update of a ReplicationController, rc-demo v0.1 -> v0.2 with 4
replicas and --update-period, while a client polls the Service's ClusterIP from both nodes:
no request fails, both versions answer during the update, and only v0.2 once both proxies route
to the v0.2 pods alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.support import (
    EXAMPLES,
    Poller,
    answering,
    endpoint_ips,
    eventually,
    http_get,
    namespace,
    proxies_route_to,
    ready_pods,
)

pytestmark = pytest.mark.e2e

RC_DEMO = EXAMPLES / "rc-demo"


async def test_rolling_update_serves_every_request(lab: Any) -> None:
    async with lab.api_client() as client, namespace(client, "rc-demo") as ns:
        lab.pinctl("apply", "-n", ns, "-f", str(RC_DEMO / "rc-demo-service.yaml"))
        lab.pinctl("apply", "-n", ns, "-f", str(RC_DEMO / "rc-demo-v0.1.yaml"))
        old = await ready_pods(client, ns, "app=rc-demo,version=v0.1", 4)
        await eventually(lambda: _endpoints_are(client, ns, {p.status.pod_ip for p in old}), "v0.1 endpoints")
        service = await client.get("services", "rc-demo", ns)
        cluster_ip = service.spec.cluster_ip  # type: ignore[attr-defined]
        sources = [n.name for n in lab.nodes]
        turn = iter(range(1_000_000))

        def version_from(source: str) -> str:
            status, body = http_get(lab, source, cluster_ip, 80)
            if status != 200:
                raise AssertionError(f"{cluster_ip}:80 answered {status}: {body.strip()}")
            return body.split()[-1]

        def version() -> str:
            return version_from(sources[next(turn) % len(sources)])

        for source in sources:  # one answer through each node's kube-proxy first
            await answering(lambda s=source: version_from(s), f"{cluster_ip}:80 to answer from {source}")
        with Poller(version, interval=0.05, max_requests=4000, max_seconds=300) as poller:
            await eventually(lambda: poller.at_least(20), "answers before the update", 30)
            await asyncio.to_thread(
                lab.pinctl,
                "rolling-update",
                "-n",
                ns,
                "rc-demo-v0.1",
                "-f",
                str(RC_DEMO / "rc-demo-v0.2.yaml"),
                "--update-period=2s",
            )
            new = await ready_pods(client, ns, "app=rc-demo", 4)
            assert {p.metadata.labels["version"] for p in new} == {"v0.2"}
            new_ips = {p.status.pod_ip for p in new}
            await eventually(lambda: _endpoints_are(client, ns, new_ips), "only v0.2 endpoints")
            settled_at = await proxies_route_to(lab, sources, ns, "rc-demo", new_ips)
            await eventually(lambda: poller.sent_at_least(40, settled_at), "answers after the update", 60)
        assert poller.failures == [], poller.summary()
        assert set(poller.counts()) == {"v0.1", "v0.2"}, poller.summary()
        assert set(poller.counts(poller.sent_since(settled_at))) == {"v0.2"}, poller.summary()
        rcs = await client.list("replicationcontrollers", ns)
        assert [rc.metadata.name for rc in rcs.items] == ["rc-demo-v0.2"]


async def _endpoints_are(client: Any, ns: str, ips: set[str]) -> bool:
    return await endpoint_ips(client, ns, "rc-demo") == ips
