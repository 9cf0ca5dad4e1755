"""kube-proxy in both modes, in the lab: real pods answer through ClusterIPs and NodePorts
programmed by real pinnace-proxy processes (one per node namespace)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from tests.integration.apiserver.process import ApiserverProcess
from tests.integration.proxy.apihelpers import eventually, fill_endpoints, make_service, names, set_endpoints
from tests.integration.proxy.conftest import ProxyProcess, run_cleanup
from tests.integration.proxy.lab import (
    POD_PORT,
    Lab,
    http_get,
    http_get_peer,
    sh,
    spread,
    try_get,
    udp_ask,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["iptables", "iptables-legacy", "userspace"])
def proxies(
    request: pytest.FixtureRequest,
    lab: Lab,
    apiserver: ApiserverProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[ProxyProcess]]:
    """iptables mode on nf_tables (its default) and on legacy, and userspace mode."""
    mode, _, backend = request.param.partition("-")
    log_dir = tmp_path_factory.mktemp(f"proxy-{request.param}")
    started: list[ProxyProcess] = []
    try:
        for node in lab.nodes:
            proxy = ProxyProcess(
                apiserver.address, mode, node, lab.path(node.netns), log_dir, backend=backend or "nft"
            )
            started.append(proxy)
            proxy.start()
        yield started
    finally:
        for proxy in started:
            proxy.stop()
        for node in lab.nodes:
            run_cleanup(lab.path(node.netns))


# ---------------------------------------------------------------------- tests


async def test_cluster_ip_from_a_pod_and_from_the_node(
    lab: Lab, api: Client, proxies: list[ProxyProcess]
) -> None:
    backends = lab.nodes[0].pods[:2]
    svc = await make_service(api, backends)
    ip = svc.spec.cluster_ip
    client_pod = lab.nodes[0].pods[2]
    answer = await eventually(lab, client_pod.netns, try_get, lambda a: a in names(backends), ip, 80)
    assert answer in names(backends)
    answer = await eventually(lab, lab.nodes[0].netns, try_get, lambda a: a in names(backends), ip, 80)
    assert answer in names(backends)


async def test_nodeport_from_outside_reaches_every_node(
    lab: Lab, api: Client, proxies: list[ProxyProcess]
) -> None:
    backends = [lab.nodes[0].pods[0], lab.nodes[1].pods[0]]
    svc = await make_service(api, backends, svc_type="NodePort")
    node_port = svc.spec.ports[0].node_port
    assert 30000 <= node_port <= 32767
    for node in lab.nodes:
        answer = await eventually(
            lab, lab.client_netns, try_get, lambda a: a in names(backends), node.ip, node_port
        )
        assert answer in names(backends)


async def test_round_robin_spreads_over_three_endpoints(
    lab: Lab, api: Client, proxies: list[ProxyProcess]
) -> None:
    backends = lab.nodes[0].pods[:3]
    svc = await make_service(api, backends)
    ip = svc.spec.cluster_ip
    await eventually(lab, lab.nodes[0].netns, try_get, lambda a: a in names(backends), ip, 80)
    counts = await lab.threads(lab.nodes[0].netns).run(spread, ip, 80, 300)
    assert set(counts) == names(backends), counts
    if proxies[0].mode == "userspace":
        # strict round robin: 100 each, give or take a dial retried on the next endpoint
        # (the first dial timeout is 250 ms, which a loaded CI machine can exceed)
        assert all(95 <= c <= 105 for c in counts.values()), counts
    else:
        # random with p = 1/3 each: 100 +- 40 is beyond 4.8 standard deviations
        assert all(60 <= c <= 140 for c in counts.values()), counts


async def test_client_ip_affinity_sticks_then_expires(
    lab: Lab, api: Client, proxies: list[ProxyProcess]
) -> None:
    backends = lab.nodes[0].pods[:3]
    svc = await make_service(api, backends, affinity_seconds=1)
    ip = svc.spec.cluster_ip
    client = lab.nodes[0].pods[0].netns  # also a backend: reaching itself is hairpin traffic
    first = await eventually(lab, client, try_get, lambda a: a in names(backends), ip, 80)
    counts = await lab.threads(client).run(spread, ip, 80, 30)
    assert counts == {first: 30}, counts
    seen = {first}
    for _ in range(8):  # after the timeout a fresh choice is made; 8 tries make a repeat 1/6561
        await asyncio.sleep(1.3)
        seen.add(await lab.threads(client).run(http_get, ip, 80))
        if len(seen) > 1:
            break
    assert len(seen) > 1, "affinity never expired"


async def test_removed_endpoint_gets_no_more_traffic(
    lab: Lab, api: Client, proxies: list[ProxyProcess]
) -> None:
    backends = lab.nodes[0].pods[:3]
    svc = await make_service(api, backends)
    ip = svc.spec.cluster_ip
    node_ns = lab.nodes[0].netns
    await eventually(lab, node_ns, try_get, lambda a: a in names(backends), ip, 80)
    await set_endpoints(api, svc, backends[1:])
    await asyncio.sleep(0.5)
    await eventually(lab, node_ns, spread, lambda c: set(c) == names(backends[1:]), ip, 80, 30)
    counts = await lab.threads(node_ns).run(spread, ip, 80, 60)
    assert backends[0].name not in counts and set(counts) <= names(backends[1:]), counts


async def test_service_without_endpoints_refuses_at_once(
    lab: Lab, api: Client, proxies: list[ProxyProcess]
) -> None:
    backends = lab.nodes[0].pods[:1]
    svc = await make_service(api, backends)
    ip = svc.spec.cluster_ip
    client = lab.nodes[0].pods[1].netns
    await eventually(lab, client, try_get, lambda a: a == backends[0].name, ip, 80)
    await set_endpoints(api, svc, [])
    await eventually(lab, client, try_get, lambda a: a not in names(backends), ip, 80)
    start = time.monotonic()
    answer = await lab.threads(client).run(try_get, ip, 80, 5.0)
    elapsed = time.monotonic() - start
    assert answer in ("ConnectionRefusedError", "ConnectionResetError", "ConnectionError"), answer
    assert elapsed < 1.0, f"refusal took {elapsed:.2f} s"


async def test_udp_service(lab: Lab, api: Client, proxies: list[ProxyProcess]) -> None:
    backends = lab.nodes[0].pods[:2]
    svc = await make_service(api, backends, protocol="UDP", port_name="dns")
    ip = svc.spec.cluster_ip

    def ask(target: str) -> str:
        try:
            return udp_ask(target, 80)
        except OSError as exc:
            return type(exc).__name__

    answer = await eventually(lab, lab.nodes[0].pods[2].netns, ask, lambda a: a in names(backends), ip)
    assert answer in names(backends)
    answer = await eventually(lab, lab.nodes[0].netns, ask, lambda a: a in names(backends), ip)
    assert answer in names(backends)


async def test_endpoints_on_another_node(lab: Lab, api: Client, proxies: list[ProxyProcess]) -> None:
    remote = lab.nodes[1].pods[:1]
    svc = await make_service(api, remote)
    ip = svc.spec.cluster_ip
    answer = await eventually(lab, lab.nodes[0].pods[0].netns, try_get, lambda a: a == remote[0].name, ip, 80)
    assert answer == remote[0].name
    answer = await eventually(lab, lab.nodes[0].netns, try_get, lambda a: a == remote[0].name, ip, 80)
    assert answer == remote[0].name


async def test_traffic_from_outside_the_pod_cidr_is_masqueraded(
    lab: Lab, api: Client, proxies: list[ProxyProcess]
) -> None:
    """A NodePort client outside the cluster is SNATed, so the pod's reply returns through the
    node; in userspace mode the proxy itself is the pod's peer."""
    backends = lab.nodes[1].pods[:1]
    svc = await make_service(api, backends, svc_type="NodePort")
    node_port = svc.spec.ports[0].node_port
    await eventually(
        lab, lab.client_netns, try_get, lambda a: a == backends[0].name, lab.nodes[0].ip, node_port
    )
    _, peer = await lab.threads(lab.client_netns).run(http_get_peer, lab.nodes[0].ip, node_port)
    assert peer != "192.168.56.100", peer


async def test_healthz_and_metrics(lab: Lab, api: Client, proxies: list[ProxyProcess]) -> None:
    backends = lab.nodes[0].pods[:1]
    svc = await make_service(api, backends)
    await eventually(
        lab, lab.nodes[0].netns, try_get, lambda a: a == backends[0].name, svc.spec.cluster_ip, 80
    )
    status, body = proxies[0].get("/healthz")
    assert status == 200 and "lastUpdated" in body
    metrics = proxies[0].metrics()
    for name in (
        "kubeproxy_sync_full_proxy_rules_duration_seconds_count",
        "kubeproxy_sync_partial_proxy_rules_duration_seconds_count",
        "kubeproxy_network_programming_duration_seconds_count",
        'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}',
    ):
        assert name in metrics, name


async def test_multi_port_named_service(lab: Lab, api: Client, proxies: list[ProxyProcess]) -> None:
    backends = lab.nodes[0].pods[:2]
    name = f"s-{uuid.uuid4().hex[:8]}"
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, "default"
    for port_name, number in (("http", 80), ("alt", 81)):
        port = svc.spec.ports.add(name=port_name, port=number, protocol="TCP")
        port.target_port.int_val = POD_PORT
    svc = await api.create(svc)
    eps = core_pb2.Endpoints()
    eps.metadata.name, eps.metadata.namespace = name, "default"
    # "http" has both pods, "alt" only the second: each port is balanced on its own
    for port_name, pods in (("http", backends), ("alt", backends[1:])):
        subset = eps.subsets.add()
        for pod in pods:
            subset.addresses.add(ip=pod.ip, node_name=pod.node)
        subset.ports.add(name=port_name, port=POD_PORT, protocol="TCP")
    await api.create(eps)
    node_ns = lab.nodes[0].netns
    ip = svc.spec.cluster_ip
    await eventually(lab, node_ns, spread, lambda c: set(c) == names(backends), ip, 80, 20)
    counts = await lab.threads(node_ns).run(spread, ip, 81, 10)
    assert counts == {backends[1].name: 10}, counts


async def test_external_ip_and_load_balancer_ip_from_outside(
    lab: Lab, api: Client, proxies: list[ProxyProcess]
) -> None:
    """Both addresses are given to node 1 (as an operator routes them to a node), so the
    client outside the cluster reaches them over the LAN."""
    node = lab.nodes[0]
    external, balancer = "192.168.56.200", "192.168.56.201"
    for address in (external, balancer):
        sh("ip", "-n", node.netns, "addr", "add", f"{address}/32", "dev", "eth0")
    try:
        backends = [node.pods[0], lab.nodes[1].pods[0]]
        name = f"s-{uuid.uuid4().hex[:8]}"
        svc = core_pb2.Service()
        svc.metadata.name, svc.metadata.namespace = name, "default"
        svc.spec.type = "LoadBalancer"
        svc.spec.external_ips.append(external)
        port = svc.spec.ports.add(name="http", port=80, protocol="TCP")
        port.target_port.int_val = POD_PORT
        svc = await api.create(svc)
        svc.status.load_balancer.ingress.add(ip=balancer)
        await api.update_status(svc)
        eps = core_pb2.Endpoints()
        eps.metadata.name, eps.metadata.namespace = name, "default"
        fill_endpoints(eps, backends)
        await api.create(eps)
        for address in (external, balancer):
            answer = await eventually(
                lab, lab.client_netns, try_get, lambda a: a in names(backends), address, 80
            )
            assert answer in names(backends)
    finally:
        for address in (external, balancer):
            sh("ip", "-n", node.netns, "addr", "del", f"{address}/32", "dev", "eth0", check=False)


async def test_hairpin_a_pod_reaches_itself_through_its_service(
    lab: Lab, api: Client, proxies: list[ProxyProcess]
) -> None:
    """The KUBE-SEP hairpin rule masquerades a pod's connection to itself, so the reply comes
    back through the node (in userspace mode the proxy is the peer anyway)."""
    pod = lab.nodes[0].pods[0]
    svc = await make_service(api, [pod])
    ip = svc.spec.cluster_ip
    await eventually(lab, pod.netns, try_get, lambda a: a == pod.name, ip, 80)
    name, peer = await lab.threads(pod.netns).run(http_get_peer, ip, 80)
    assert name == pod.name and peer != pod.ip, peer
