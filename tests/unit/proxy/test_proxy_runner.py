"""KubeProxy end to end against an in-process apiserver, with a recording proxier double
(the real proxiers are exercised in tests/integration/proxy)."""

import asyncio
import contextlib
import urllib.request

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.proxy.config import ProxyConfig
from services.proxy.mode import SyncResult
from services.proxy.proxy import KubeProxy
from services.proxy.service_port import EndpointsMap, ServicePortName, ServicesMap


class Recorder:
    mode = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[set[ServicePortName] | None, ServicesMap, EndpointsMap]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def sync(
        self, services: ServicesMap, endpoints: EndpointsMap, changed: set[ServicePortName] | None
    ) -> SyncResult:
        self.calls.append((None if changed is None else set(changed), dict(services), dict(endpoints)))
        return SyncResult({"nat": len(services), "filter": 0})


def fetch(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
        return answer.status, answer.read().decode()


async def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.02)


async def test_changes_reach_the_proxier_as_partial_syncs(client: Client) -> None:
    recorder = Recorder()
    config = ProxyConfig(min_sync_period=0.05, healthz_listen="127.0.0.1:0", metrics_listen="127.0.0.1:0")
    proxy = KubeProxy(config, client=client, proxier=recorder)
    task = asyncio.create_task(proxy.run())
    try:
        await asyncio.wait_for(proxy.ready.wait(), 15)
        assert recorder.calls[0][0] is None  # the first sync is full
        svc = core_pb2.Service()
        svc.metadata.name, svc.metadata.namespace = "web", "default"
        svc.spec.ports.add(name="http", port=80, protocol="TCP").target_port.int_val = 8080
        await client.create(svc)
        eps = core_pb2.Endpoints()
        eps.metadata.name, eps.metadata.namespace = "web", "default"
        subset = eps.subsets.add()
        subset.addresses.add(ip="10.244.1.2")
        subset.ports.add(name="http", port=8080, protocol="TCP")
        await client.create(eps)
        name = ServicePortName("default", "web", "http", "tcp")
        await wait_for(lambda: any(name in c[2] for c in recorder.calls))
        partial = [c for c in recorder.calls if c[0] is not None]
        assert partial and all(c[0] == {name} for c in partial)
        healthz_port, metrics_port = proxy.http.ports()
        status, _ = await asyncio.to_thread(fetch, healthz_port, "/healthz")
        assert status == 200
        _, text = await asyncio.to_thread(fetch, metrics_port, "/metrics")
        assert "kubeproxy_network_programming_duration_seconds_count 1.0" in text
        assert "kubeproxy_sync_partial_proxy_rules_duration_seconds_count" in text
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        proxy.close()
