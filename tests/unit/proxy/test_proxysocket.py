"""The userspace proxy sockets on loopback (no root: no rules, the test dials the proxy port)."""

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from services.proxy.netns import NodeNamespace
from services.proxy.service_port import ServicePortName
from services.proxy.userspace.proxysocket import TCPProxySocket, UDPProxySocket, open_listener
from services.proxy.userspace.roundrobin import LoadBalancerRR

NAME = ServicePortName("ns", "svc", "http", "tcp")


@pytest.fixture
def here() -> AsyncIterator[NodeNamespace]:
    node = NodeNamespace("", workers=2)
    yield node
    node.close()


async def backend(name: str) -> tuple[asyncio.Server, int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        writer.write(name.encode() + b":" + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def ask(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hi")
    await writer.drain()
    writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_tcp_round_robin_and_half_close(here: NodeNamespace) -> None:
    servers = [await backend(n) for n in ("a", "b", "c")]
    lb = LoadBalancerRR()
    lb.update_endpoints(NAME, [f"127.0.0.1:{port}" for _, port in servers])
    proxy = TCPProxySocket(NAME, await open_listener(here, "127.0.0.1", 0, "tcp"), lb, here)
    await proxy.start()
    answers = [await ask(proxy.port) for _ in range(6)]
    assert {a[:1] for a in answers} == {b"a", b"b", b"c"}
    assert answers[:3] == answers[3:]
    assert all(a.endswith(b":hi") for a in answers)
    await proxy.close()
    for server, _ in servers:
        server.close()


async def test_tcp_dial_failure_moves_on_and_resets_affinity(here: NodeNamespace) -> None:
    server, port = await backend("alive")
    lb = LoadBalancerRR()
    lb.new_service(NAME, 3600)
    lb.update_endpoints(NAME, [f"127.0.0.1:{dead_port()}", f"127.0.0.1:{port}"])
    proxy = TCPProxySocket(NAME, await open_listener(here, "127.0.0.1", 0, "tcp"), lb, here)
    await proxy.start()
    for _ in range(4):
        assert await ask(proxy.port) == b"alive:hi"
    await proxy.close()
    server.close()


async def test_tcp_without_endpoints_resets_the_client_at_once(here: NodeNamespace) -> None:
    lb = LoadBalancerRR()
    proxy = TCPProxySocket(NAME, await open_listener(here, "127.0.0.1", 0, "tcp"), lb, here)
    await proxy.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(), 2)
    writer.close()
    await proxy.close()


async def test_udp_relays_replies_per_client(here: NodeNamespace) -> None:
    loop = asyncio.get_running_loop()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(b"echo:" + data, addr)  # type: ignore[attr-defined]

    echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    lb = LoadBalancerRR()
    lb.update_endpoints(NAME, [f"127.0.0.1:{echo.get_extra_info('sockname')[1]}"])
    proxy = UDPProxySocket(NAME, await open_listener(here, "127.0.0.1", 0, "udp"), lb, here, idle_timeout=0.5)
    await proxy.start()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            replies.put_nowait(data)

    client, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", proxy.port))
    client.sendto(b"one")
    client.sendto(b"two")
    got = {await asyncio.wait_for(replies.get(), 2), await asyncio.wait_for(replies.get(), 2)}
    assert got == {b"echo:one", b"echo:two"}
    assert len(proxy.clients) == 1
    deadline = loop.time() + 10
    while proxy.clients and loop.time() < deadline:  # idle flows are dropped
        await asyncio.sleep(0.05)
    assert proxy.clients == {}
    client.close()
    echo.close()
    await proxy.close()
