from __future__ import annotations

import asyncio
import contextlib

import pytest

from pinnace.api.coordination.v1 import coordination_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.kubelet.cni_config import conflist
from services.kubelet.config import KubeletConfig
from services.kubelet.lease import renew
from services.kubelet.netns import SocketFactory
from services.kubelet.node_status import NodeStatusManager
from services.kubelet.probes import HandlerError, Handlers
from services.kubelet.sandbox import dns_config
from tests.unit.apiserver.conftest import client, server  # noqa: F401
from tests.unit.kubelet.fakes import FakeCRI, pod


@contextlib.asynccontextmanager
async def http_server(status: int):
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok".encode())
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


async def test_http_and_tcp_handlers() -> None:
    handlers = Handlers(runtime=None, sockets=SocketFactory())
    container = core_pb2.Container(name="c", ports=[core_pb2.ContainerPort(name="web", container_port=1)])
    async with http_server(200) as port:
        action = core_pb2.HTTPGetAction(path="/healthz", port=meta_pb2.IntOrString(int_val=port))
        assert await handlers.http_get(action, container, "127.0.0.1", 2) == "ok"
        container.ports[0].container_port = port
        tcp = core_pb2.TCPSocketAction(port=meta_pb2.IntOrString(str_val="web"))
        await handlers.tcp(tcp, container, "127.0.0.1", 2)
    async with http_server(503) as port:
        action = core_pb2.HTTPGetAction(path="/", port=meta_pb2.IntOrString(int_val=port))
        with pytest.raises(HandlerError, match="503"):
            await handlers.http_get(action, container, "127.0.0.1", 2)
        closed = port
    with pytest.raises(HandlerError):
        await handlers.tcp(
            core_pb2.TCPSocketAction(port=meta_pb2.IntOrString(int_val=closed)), container, "127.0.0.1", 1
        )


def test_dns_policies(tmp_path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n")
    p = pod("p", "shop")
    config = dns_config(p, ["10.96.0.10"], "cluster.local", resolv)
    assert list(config.servers) == ["10.96.0.10"]
    assert list(config.searches) == [
        "shop.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
        "corp.example",
    ]
    assert list(config.options) == ["ndots:5"]
    p.spec.dns_policy = "Default"
    assert list(dns_config(p, ["10.96.0.10"], "cluster.local", resolv).servers) == ["192.0.2.53"]
    p.spec.dns_policy = "None"
    p.spec.dns_config.nameservers.append("1.1.1.1")
    assert list(dns_config(p, [], "cluster.local", resolv).servers) == ["1.1.1.1"]


def test_conflist_from_pod_cidr(tmp_path) -> None:
    doc = conflist("10.244.3.0/24", "cni0", tmp_path, ("bridge", "host-local", True))
    bridge = doc["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.3.0/24"}]] and bridge["isGateway"]
    assert doc["plugins"][1]["type"] == "portmap"


async def test_node_registration_status_and_lease(client, tmp_path) -> None:  # noqa: F811
    config = KubeletConfig(node_name="n1", root_dir=tmp_path, node_ip="10.0.0.5", max_pods=50)
    manager = NodeStatusManager(config, client, FakeCRI(network_ready=False), node_api_port=10250)
    await manager.register()
    node = await client.get("nodes", "n1")
    assert node.metadata.labels["kubernetes.io/hostname"] == "n1"
    assert node.metadata.labels["kubernetes.io/os"] == "linux"
    assert node.status.capacity["pods"] == "50" and node.status.allocatable["cpu"]
    assert node.status.node_info.container_runtime_version == "docker://20.10.24"
    assert node.status.daemon_endpoints.kubelet_endpoint.port == 10250
    assert {a.type: a.address for a in node.status.addresses} == {"InternalIP": "10.0.0.5", "Hostname": "n1"}
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "False" and "NetworkReady=false" in ready.message
    assert {c.type for c in node.status.conditions} == {
        "Ready",
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
    }
    manager.runtime = FakeCRI(network_ready=True)
    await manager.update()
    node = await client.get("nodes", "n1")
    assert next(c for c in node.status.conditions if c.type == "Ready").status == "True"
    # a second kubelet start adopts the Node
    await NodeStatusManager(config, client, FakeCRI(), node_api_port=10250).register()
    lease = await renew(client, "n1", 40, node.metadata.uid)
    first = lease.spec.renew_time.ToNanoseconds()
    await asyncio.sleep(0.01)
    lease = await renew(client, "n1", 40)
    assert isinstance(lease, coordination_pb2.Lease) and lease.spec.holder_identity == "n1"
    assert lease.spec.renew_time.ToNanoseconds() > first and lease.metadata.namespace == "kube-node-lease"
