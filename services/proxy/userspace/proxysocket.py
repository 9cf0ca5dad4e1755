"""The userspace mode's proxy sockets (Kubernetes' proxysocket.go), on asyncio.

TCP: every accepted connection dials an endpoint chosen by the load balancer, retrying with
the dial timeouts Kubernetes used (250 ms, 500 ms, 1 s, 2 s); after the first failure the
client's affinity is reset so a dead sticky endpoint is skipped. Bytes are then copied both
ways; an end-of-stream on one side is passed on as a half-close, and the connection is closed
when both directions have ended. With no endpoint the client is reset at once.

UDP: per client address a connected socket to an endpoint carries the client's datagrams and
its replies back, and is dropped after the idle timeout (Kubernetes' --udp-timeout).

Listening and outgoing sockets are created in the node's namespace (netns.NodeNamespace).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import socket
import struct
from typing import cast

import structlog

from services.proxy.netns import NodeNamespace
from services.proxy.service_port import ServicePortName
from services.proxy.userspace.roundrobin import LoadBalancerRR, NoEndpointsError

log = structlog.get_logger("proxy.userspace")

DIAL_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)
UDP_BUFFER = 4096
COPY_CHUNK = 64 * 1024


def split_host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


async def open_listener(netns: NodeNamespace, ip: str, port: int, protocol: str) -> socket.socket:
    """A bound (and for TCP listening) socket in the node's namespace; port 0 lets the kernel
    pick."""

    def make() -> socket.socket:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
            if protocol == "tcp":
                sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    return await netns.run(make)


class ProxySocket(abc.ABC):
    """One service port's proxy: `port` is where the portals send its traffic."""

    def __init__(
        self, name: ServicePortName, sock: socket.socket, lb: LoadBalancerRR, netns: NodeNamespace
    ) -> None:
        self.name = name
        self.sock = sock
        self.lb = lb
        self.netns = netns
        self.port: int = sock.getsockname()[1]

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


async def try_connect(
    name: ServicePortName, client_ip: str, lb: LoadBalancerRR, netns: NodeNamespace
) -> socket.socket | None:
    loop = asyncio.get_running_loop()
    reset = False
    for timeout in DIAL_TIMEOUTS:
        try:
            endpoint = lb.next_endpoint(name, client_ip, reset)
        except NoEndpointsError:
            return None
        target = split_host_port(endpoint)
        sock = await netns.socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET, socket.SOCK_STREAM)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, target), timeout)
        except (OSError, TimeoutError) as exc:
            sock.close()
            log.info(
                "dial failed", service=str(name), endpoint=endpoint, error=str(exc) or type(exc).__name__
            )
            reset = True
            continue
        return sock
    return None


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, so a client of a service without endpoints fails at once."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(COPY_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class TCPProxySocket(ProxySocket):
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.connections: set[asyncio.Task[None]] = set()
        self.server = await asyncio.start_server(self._accept, sock=self.sock)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            if task is not None:
                self.connections.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_ip = writer.get_extra_info("peername")[0]
        backend = await try_connect(self.name, client_ip, self.lb, self.netns)
        if backend is None:
            log.info("no endpoint reachable, resetting client", service=str(self.name), client=client_ip)
            _reset(writer)
            return
        up_reader, up_writer = await asyncio.open_connection(sock=backend)
        try:
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(getattr(self, "connections", ())):
            task.cancel()
        self.sock.close()


class _Backend(asyncio.DatagramProtocol):
    """Replies from one endpoint to one client."""

    def __init__(self, owner: UDPProxySocket, client: tuple[str, int]) -> None:
        self.owner, self.client = owner, client
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.owner.reply(self.client, data)

    def error_received(self, exc: Exception) -> None:
        self.owner.forget(self.client)


class _Client:
    def __init__(self) -> None:
        self.backend: _Backend | None = None
        self.queued: list[bytes] = []
        self.timer: asyncio.TimerHandle | None = None


class UDPProxySocket(ProxySocket, asyncio.DatagramProtocol):
    def __init__(
        self,
        name: ServicePortName,
        sock: socket.socket,
        lb: LoadBalancerRR,
        netns: NodeNamespace,
        idle_timeout: float,
    ) -> None:
        super().__init__(name, sock, lb, netns)
        self.idle_timeout = idle_timeout
        self.clients: dict[tuple[str, int], _Client] = {}
        self.transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=self.sock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        client = self.clients.get(addr)
        if client is None:
            client = self.clients[addr] = _Client()
            client.queued.append(data)
            asyncio.get_running_loop().create_task(self._connect(addr, client))
        elif client.backend is None or client.backend.transport is None:
            client.queued.append(data)
        else:
            client.backend.transport.sendto(data)
        self._touch(addr, client)

    def _touch(self, addr: tuple[str, int], client: _Client) -> None:
        if client.timer is not None:
            client.timer.cancel()
        client.timer = asyncio.get_running_loop().call_later(self.idle_timeout, self.forget, addr)

    async def _connect(self, addr: tuple[str, int], client: _Client) -> None:
        try:
            endpoint = self.lb.next_endpoint(self.name, addr[0])
        except NoEndpointsError:
            self.forget(addr)
            return
        target = split_host_port(endpoint)

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(target)
            return sock

        try:
            sock = await self.netns.run(make)
        except OSError:
            self.forget(addr)
            return
        if self.clients.get(addr) is not client:
            sock.close()
            return
        loop = asyncio.get_running_loop()
        _, backend = await loop.create_datagram_endpoint(lambda: _Backend(self, addr), sock=sock)
        client.backend = backend
        transport = backend.transport
        if transport is None:
            self.forget(addr)
            return
        for data in client.queued:
            transport.sendto(data)
        client.queued.clear()

    def reply(self, client: tuple[str, int], data: bytes) -> None:
        if self.transport is not None:
            self.transport.sendto(data, client)
        entry = self.clients.get(client)
        if entry is not None:
            self._touch(client, entry)

    def forget(self, addr: tuple[str, int]) -> None:
        client = self.clients.pop(addr, None)
        if client is None:
            return
        if client.timer is not None:
            client.timer.cancel()
        if client.backend is not None and client.backend.transport is not None:
            client.backend.transport.close()

    async def close(self) -> None:
        for addr in list(self.clients):
            self.forget(addr)
        if self.transport is not None:
            self.transport.close()
        self.sock.close()
