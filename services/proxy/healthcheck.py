"""The service health server: for every LoadBalancer service with externalTrafficPolicy Local,
an HTTP server on its healthCheckNodePort that tells a load balancer whether this node has
endpoints of the service (Kubernetes' ServiceHealthServer).

Traffic to such a service is only delivered to this node's endpoints (the KUBE-XLB chain drops
it otherwise, to keep the client's address), so the load balancer must send traffic only to
nodes that have some: `GET` on any path answers 200 while this node has local endpoints and
kube-proxy is healthy, 503 otherwise, with Kubernetes' JSON body and the header
X-Load-Balancing-Endpoint-Weight. Listeners live in the node's network namespace (created on
a NodeNamespace thread) and are opened and closed as services come and go.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from services.proxy.netns import NodeNamespace
from services.proxy.service_port import EndpointsMap, ServicePortName, ServicesMap

log = structlog.get_logger("proxy.healthcheck")

ServiceName = tuple[str, str]  # (namespace, name)


def local_count(endpoints: EndpointsMap, ports: Iterable[ServicePortName], node_name: str) -> int:
    """Endpoints on this node of a service, summed over its ports (as Kubernetes counts them)."""
    return sum(
        1 for port in ports for ep in endpoints.get(port, ()) if node_name and ep.node_name == node_name
    )


def response(service: ServiceName, count: int, proxy_healthy: bool) -> bytes:
    """The whole HTTP/1.1 answer, status and body as kube-proxy writes them."""
    namespace, name = service
    healthy = count > 0 and proxy_healthy
    status = "200 OK" if healthy else "503 Service Unavailable"
    body = (
        "{\n"
        '\t"service": {\n'
        f'\t\t"namespace": "{namespace}",\n'
        f'\t\t"name": "{name}"\n'
        "\t},\n"
        f'\t"localEndpoints": {count},\n'
        f'\t"serviceProxyHealthy": {"true" if proxy_healthy else "false"}\n'
        "}"
    ).encode()
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"X-Load-Balancing-Endpoint-Weight: {count}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(64)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class _Listener:
    port: int
    server: asyncio.Server


class ServiceHealthServer:
    def __init__(self, netns: NodeNamespace, node_name: str, proxy_healthy: Callable[[], bool]) -> None:
        self.netns = netns
        self.node_name = node_name
        self.proxy_healthy = proxy_healthy
        self.listeners: dict[ServiceName, _Listener] = {}
        self.counts: dict[ServiceName, int] = {}
        # service -> its ports that carry a healthCheckNodePort, and that port
        self.tracked: dict[ServiceName, dict[ServicePortName, int]] = {}

    async def sync(
        self, services: ServicesMap, endpoints: EndpointsMap, changed: set[ServicePortName] | None = None
    ) -> None:
        """Follow the changed service ports (all of them when `changed` is None): open, move
        or close listeners and recount local endpoints of the services they belong to, so a
        partial sync costs O(changed)."""
        names: Iterable[ServicePortName]
        if changed is None:
            names = {*services, *(p for ports in self.tracked.values() for p in ports)}
        else:
            names = changed
        affected: set[ServiceName] = set()
        for name in names:
            service = (name.namespace, name.name)
            info = services.get(name)
            ports = self.tracked.setdefault(service, {})
            if info is not None and info.health_check_node_port:
                ports[name] = info.health_check_node_port
            else:
                ports.pop(name, None)
            if ports or service in self.listeners:
                affected.add(service)
            if not ports:
                del self.tracked[service]
        for service in affected:
            ports = self.tracked.get(service, {})
            wanted = min(ports.values()) if ports else 0
            self.counts[service] = local_count(endpoints, ports, self.node_name)
            listener = self.listeners.get(service)
            if listener is not None and listener.port != wanted:
                await self._close(service)
            if wanted and service not in self.listeners:
                await self._open(service, wanted)
            if not wanted:
                self.counts.pop(service, None)

    async def _open(self, service: ServiceName, port: int) -> None:
        try:
            sock = await self.netns.run(_listen, port)
        except OSError as exc:
            log.warning("cannot serve health check", service="/".join(service), port=port, error=str(exc))
            return
        server = await asyncio.start_server(functools.partial(self._serve, service), sock=sock)
        self.listeners[service] = _Listener(port, server)

    def ports(self) -> dict[ServiceName, int]:
        return {service: lst.port for service, lst in self.listeners.items()}

    async def _close(self, service: ServiceName) -> None:
        listener = self.listeners.pop(service)
        listener.server.close()
        with contextlib.suppress(Exception):
            await listener.server.wait_closed()

    async def close(self) -> None:
        for service in list(self.listeners):
            await self._close(service)

    async def _serve(
        self, service: ServiceName, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(response(service, self.counts.get(service, 0), self.proxy_healthy()))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
