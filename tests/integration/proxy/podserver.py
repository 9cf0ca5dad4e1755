"""A pod's workload for the proxy lab: answers every TCP connection with an HTTP response
naming the pod and the client address it saw, and every UDP datagram with the same line.

Run inside a pod namespace: python podserver.py NAME PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def main(name: str, port: int) -> None:
    loop = asyncio.get_running_loop()

    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, TimeoutError, asyncio.LimitOverrunError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        peer = writer.get_extra_info("peername")[0]
        body = f"{name} {peer}\n".encode()
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        try:
            await writer.drain()
        finally:
            writer.close()

    class Udp(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(f"{name} {addr[0]}\n".encode(), addr)  # type: ignore[attr-defined]

    server = await asyncio.start_server(tcp, "0.0.0.0", port, backlog=512)
    await loop.create_datagram_endpoint(Udp, local_addr=("0.0.0.0", port))
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
