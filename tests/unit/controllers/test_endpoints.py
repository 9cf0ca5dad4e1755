from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.controllers.endpoints import EndpointsController
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.controllers.fakes import FakeKubelet, Harness, until

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default, labels: {tier: front}}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: metrics, port: 9090, targetPort: 9090}
"""


def web_pod(name: str, http_port: int, labels: dict[str, str] | None = None):
    p = pod(name, labels=labels or {"app": "web"})
    p.spec.containers[0].ports.add(name="http", container_port=http_port, protocol="TCP")
    return p


async def _endpoints(client: Client, name: str = "web"):
    try:
        return await client.get("endpoints", name, "default")
    except Exception:
        return None


async def test_ready_and_not_ready_addresses_with_named_ports(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    ctl = harness.add(EndpointsController)
    await harness.start()
    await client.create(manifest(SERVICE))
    await client.create(web_pod("a", 8080))
    await client.create(web_pod("b", 8081))
    await client.create(pod("other", labels={"app": "db"}))

    async def two_subsets() -> bool:
        ep = await _endpoints(client)
        return ep is not None and sum(len(s.addresses) for s in ep.subsets) == 2

    await until(two_subsets)
    ep = await client.get("endpoints", "web", "default")
    assert ep.metadata.labels["tier"] == "front"
    ports = sorted(tuple(sorted((p.name, p.port) for p in s.ports)) for s in ep.subsets)
    assert ports == [(("http", 8080), ("metrics", 9090)), (("http", 8081), ("metrics", 9090))]
    names = {a.target_ref.name for s in ep.subsets for a in s.addresses}
    assert names == {"a", "b"}
    assert all(a.node_name for s in ep.subsets for a in s.addresses)

    # b becomes not ready: it moves to notReadyAddresses.
    await kubelet.set_status("default", "b", ready=False)

    async def b_not_ready() -> bool:
        ep = await _endpoints(client)
        return any(a.target_ref.name == "b" for s in ep.subsets for a in s.not_ready_addresses)

    await until(b_not_ready)
    # A pod whose labels stop matching leaves the endpoints.
    await client.patch("pods", "a", {"metadata": {"labels": {"app": "none"}}}, "default")

    async def a_gone() -> bool:
        ep = await _endpoints(client)
        return not any(a.target_ref.name == "a" for s in ep.subsets for a in s.addresses)

    await until(a_gone)
    before = ctl.syncs
    # A change that matters to no service recomputes nothing.
    await client.patch("pods", "other", {"metadata": {"annotations": {"x": "y"}}}, "default")
    await client.patch("pods", "b", {"metadata": {"annotations": {"x": "y"}}}, "default")
    await client.create(pod("unrelated", labels={"app": "cache"}))
    await until(lambda: kubelet.informer.store.get("default/unrelated") is not None)
    assert ctl.syncs == before


async def test_service_deletion_removes_endpoints_and_headless_hostnames(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(EndpointsController)
    await harness.start()
    svc = manifest("""
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
""")
    await client.create(svc)
    p = pod("db-0", labels={"app": "db"})
    p.spec.hostname, p.spec.subdomain = "db-0", "db"
    await client.create(p)

    async def has_hostname() -> bool:
        ep = await _endpoints(client, "db")
        return ep is not None and any(a.hostname == "db-0" for s in ep.subsets for a in s.addresses)

    await until(has_hostname)
    await client.delete("services", "db", "default")
    await until(lambda: _gone(client, "db"))


async def _gone(client: Client, name: str) -> bool:
    return await _endpoints(client, name) is None


async def test_selectorless_service_endpoints_are_left_alone(client: Client, harness: Harness) -> None:
    harness.add(EndpointsController)
    await harness.start()
    svc = manifest("""
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {ports: [{port: 80}]}
""")
    await client.create(svc)
    ep = core_pb2.Endpoints()
    ep.metadata.name, ep.metadata.namespace = "ext", "default"
    ep.subsets.add().addresses.add(ip="192.168.1.1")
    await client.create(ep)
    await harness.controllers[0].sync("default/ext")
    got = await client.get("endpoints", "ext", "default")
    assert got.subsets[0].addresses[0].ip == "192.168.1.1"
