"""externalTrafficPolicy and internalTrafficPolicy Local in the lab, iptables mode on both
backends: only a node's own endpoints serve, the client's address reaches the pod, and the
healthCheckNodePort tells a load balancer which nodes have endpoints."""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid
from collections.abc import Iterator

import pytest

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from tests.integration.apiserver.process import ApiserverProcess
from tests.integration.proxy.apihelpers import eventually, fill_endpoints, set_endpoints
from tests.integration.proxy.conftest import ProxyProcess, run_cleanup
from tests.integration.proxy.lab import POD_PORT, Lab, Node, Pod, http_get_peer, sh, try_get

pytestmark = pytest.mark.integration

CLIENT_IP = "192.168.56.100"


@pytest.fixture(scope="module", params=["nft", "legacy"])
def proxies(
    request: pytest.FixtureRequest,
    lab: Lab,
    apiserver: ApiserverProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[ProxyProcess]]:
    log_dir = tmp_path_factory.mktemp(f"proxy-local-{request.param}")
    started: list[ProxyProcess] = []
    try:
        for node in lab.nodes:
            proxy = ProxyProcess(
                apiserver.address, "iptables", node, lab.path(node.netns), log_dir, backend=request.param
            )
            started.append(proxy)
            proxy.start()
        yield started
    finally:
        for proxy in started:
            proxy.stop()
        for node in lab.nodes:
            run_cleanup(lab.path(node.netns))


async def local_service(
    api: Client, pods: list[Pod], *, svc_type: str, external: str = "", internal: str = ""
) -> core_pb2.Service:
    name = f"l-{uuid.uuid4().hex[:8]}"
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, "default"
    svc.spec.type = svc_type
    if external:
        svc.spec.external_traffic_policy = external
    if internal:
        svc.spec.internal_traffic_policy = internal
    port = svc.spec.ports.add(name="http", port=80, protocol="TCP")
    port.target_port.int_val = POD_PORT
    created = await api.create(svc)
    eps = core_pb2.Endpoints()
    eps.metadata.name, eps.metadata.namespace = name, "default"
    fill_endpoints(eps, pods)
    await api.create(eps)
    return created


def health(ip: str, port: int) -> tuple[int, dict[str, object]] | str:
    """(status, JSON body) of the service health check, or the error's class name."""
    try:
        conn = http.client.HTTPConnection(ip, port, timeout=2)
        conn.request("GET", "/")
        answer = conn.getresponse()
        body = json.loads(answer.read())
        conn.close()
        return answer.status, body
    except OSError as exc:
        return type(exc).__name__


def rules_of(node: Node, proxy: ProxyProcess) -> str:
    return sh("ip", "netns", "exec", node.netns, f"iptables-{proxy.backend}-save")


async def synced(node: Node, proxy: ProxyProcess, text: str) -> None:
    """Until the node's rules contain `text` (its proxy has synced the change)."""
    for _ in range(100):
        if text in rules_of(node, proxy):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {node.name}'s rules")


def peer_or_error(ip: str, port: int) -> tuple[str, str] | str:
    try:
        return http_get_peer(ip, port, timeout=1.0)
    except OSError as exc:
        return type(exc).__name__


async def test_external_traffic_policy_local(lab: Lab, api: Client, proxies: list[ProxyProcess]) -> None:
    far, near = lab.nodes  # the only endpoint runs on `near`
    pod = near.pods[0]
    svc = await local_service(api, [pod], svc_type="LoadBalancer", external="Local")
    node_port, health_port = svc.spec.ports[0].node_port, svc.spec.health_check_node_port
    assert health_port and health_port != node_port
    # The node with the endpoint serves, and the pod sees the client's own address.
    answer = await eventually(
        lab, lab.client_netns, peer_or_error, lambda a: isinstance(a, tuple), near.ip, node_port
    )
    assert answer == (pod.name, CLIENT_IP)
    # The other node has no local endpoint: it drops rather than forward (and SNAT) elsewhere.
    await synced(far, proxies[0], f"default/{svc.metadata.name}:http has no local endpoints")
    assert await lab.threads(lab.client_netns).run(try_get, far.ip, node_port, 1.0) == "TimeoutError"
    # A load balancer's health check tells them apart.
    near_health = await eventually(
        lab, lab.client_netns, health, lambda a: a != "ConnectionRefusedError", near.ip, health_port
    )
    assert near_health == (
        200,
        {
            "service": {"namespace": "default", "name": svc.metadata.name},
            "localEndpoints": 1,
            "serviceProxyHealthy": True,
        },
    )
    far_health = await lab.threads(lab.client_netns).run(health, far.ip, health_port)
    assert isinstance(far_health, tuple) and far_health[0] == 503 and far_health[1]["localEndpoints"] == 0
    # An endpoint appears on the other node: it serves too, and its health check turns 200.
    await set_endpoints(api, svc, [pod, far.pods[0]])
    answer = await eventually(
        lab, lab.client_netns, peer_or_error, lambda a: isinstance(a, tuple), far.ip, node_port
    )
    assert answer == (far.pods[0].name, CLIENT_IP)
    await eventually(
        lab, lab.client_netns, health, lambda a: isinstance(a, tuple) and a[0] == 200, far.ip, health_port
    )


async def test_node_port_with_cluster_policy_is_masqueraded(
    lab: Lab, api: Client, proxies: list[ProxyProcess]
) -> None:
    """The same service with Cluster policy: every node forwards, and hides the client."""
    far, near = lab.nodes
    pod = near.pods[0]
    svc = await local_service(api, [pod], svc_type="NodePort")
    answer = await eventually(
        lab,
        lab.client_netns,
        peer_or_error,
        lambda a: isinstance(a, tuple),
        far.ip,
        svc.spec.ports[0].node_port,
    )
    assert answer[0] == pod.name and answer[1] != CLIENT_IP


async def test_internal_traffic_policy_local(lab: Lab, api: Client, proxies: list[ProxyProcess]) -> None:
    far, near = lab.nodes
    pod = near.pods[0]
    svc = await local_service(api, [pod], svc_type="ClusterIP", internal="Local")
    ip = svc.spec.cluster_ip
    answer = await eventually(lab, near.netns, try_get, lambda a: a == pod.name, ip, 80)
    assert answer == pod.name
    # no endpoint on this node: the connection is dropped, not sent to the other node...
    client = far.pods[0].netns
    await synced(far, proxies[0], f"default/{svc.metadata.name}:http has no local endpoints")
    assert await lab.threads(client).run(try_get, ip, 80, 1.0) == "TimeoutError"
    # ...which Cluster policy would do
    current = await api.get("services", svc.metadata.name, "default")
    current.spec.internal_traffic_policy = "Cluster"
    await api.update(current)
    assert await eventually(lab, client, try_get, lambda a: a == pod.name, ip, 80) == pod.name
