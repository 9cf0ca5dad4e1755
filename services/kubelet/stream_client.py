"""The client side of the runtime's streaming protocol `pinnace-stream/1` (docs/cri.md): the
Exec/Attach/PortForward RPCs return a URL; the kubelet connects (from the node's network
namespace, where the runtime's streaming server listens), upgrades, and then exchanges
frames `channel (1 byte) | length (4 bytes, big endian) | payload` (0 stdin, 1 stdout,
2 stderr, 3 status, 4 resize) or, for port-forward, raw bytes. Written here rather than
imported from the shim: components never import each other."""

from __future__ import annotations

import asyncio
import struct
from urllib.parse import urlsplit

from services.kubelet.netns import SocketFactory

PROTOCOL = "pinnace-stream/1"
STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
_FRAME = struct.Struct(">BI")


def encode_frame(channel: int, payload: bytes) -> bytes:
    return _FRAME.pack(channel, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    try:
        channel, size = _FRAME.unpack(await reader.readexactly(_FRAME.size))
        return channel, await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


async def open_stream(
    url: str, sockets: SocketFactory, timeout: float = 10.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        raise ConnectionError(f"bad streaming URL {url!r}")
    reader, writer = await sockets.open_connection(parts.hostname, parts.port, timeout)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: Upgrade\r\nUpgrade: {PROTOCOL}\r\n"
    )
    writer.write((request + "\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return reader, writer
