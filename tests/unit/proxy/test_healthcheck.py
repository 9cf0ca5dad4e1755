"""The service health server (healthCheckNodePort) on loopback, in this namespace."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator

import pytest

from services.proxy.healthcheck import ServiceHealthServer, local_count, response
from services.proxy.netns import NodeNamespace
from services.proxy.service_port import Endpoint, ServiceInfo, ServicePortName

HTTP = ServicePortName("default", "web", "http", "tcp")
HTTPS = ServicePortName("default", "web", "https", "tcp")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(port: int) -> tuple[int, dict[str, str], dict[str, object]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


@pytest.fixture
def here() -> Iterator[NodeNamespace]:
    node = NodeNamespace("", workers=1)
    yield node
    node.close()


def test_response_is_kubernetes_json() -> None:
    text = response(("default", "web"), 2, True).decode()
    assert text.startswith("HTTP/1.1 200 OK\r\n")
    assert "X-Load-Balancing-Endpoint-Weight: 2\r\n" in text and "X-Content-Type-Options: nosniff" in text
    body = text.split("\r\n\r\n", 1)[1]
    assert body == (
        '{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web"\n\t},\n'
        '\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}'
    )
    assert response(("default", "web"), 0, True).startswith(b"HTTP/1.1 503 Service Unavailable")
    assert response(("default", "web"), 3, False).startswith(b"HTTP/1.1 503 Service Unavailable")


def test_local_count_sums_over_ports_on_this_node_only() -> None:
    endpoints = {
        HTTP: (Endpoint("10.244.1.2", 80, "n1"), Endpoint("10.244.2.2", 80, "n2")),
        HTTPS: (Endpoint("10.244.1.2", 443, "n1"),),
    }
    assert local_count(endpoints, [HTTP, HTTPS], "n1") == 2
    assert local_count(endpoints, [HTTP], "") == 0


async def test_server_follows_services_and_local_endpoints(here: NodeNamespace) -> None:
    port = free_port()
    healthy = [True]
    server = ServiceHealthServer(here, "n1", lambda: healthy[0])
    info = ServiceInfo("10.96.0.10", 80, "tcp", external_local=True, health_check_node_port=port)
    services = {HTTP: info}
    try:
        await server.sync(services, {HTTP: (Endpoint("10.244.2.2", 80, "n2"),)})
        status, headers, body = await get(port)
        assert (status, body["localEndpoints"], headers["X-Load-Balancing-Endpoint-Weight"]) == (503, 0, "0")
        assert body["service"] == {"namespace": "default", "name": "web"}
        await server.sync(services, {HTTP: (Endpoint("10.244.1.2", 80, "n1"),)}, {HTTP})
        status, _, body = await get(port)
        assert (status, body["localEndpoints"], body["serviceProxyHealthy"]) == (200, 1, True)
        healthy[0] = False
        assert (await get(port))[0] == 503
        # the service loses its health check port: the listener goes
        await server.sync({HTTP: ServiceInfo("10.96.0.10", 80, "tcp")}, {}, {HTTP})
        assert server.ports() == {}
        with pytest.raises(OSError):
            await get(port)
    finally:
        await server.close()


async def test_a_taken_port_is_reported_not_fatal(here: NodeNamespace) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        port = int(taken.getsockname()[1])
        server = ServiceHealthServer(here, "n1", lambda: True)
        info = ServiceInfo("10.96.0.10", 80, "tcp", external_local=True, health_check_node_port=port)
        await server.sync({HTTP: info}, {})
        assert server.ports() == {}
        await server.close()
