"""The streaming endpoint behind Exec, Attach and PortForward. As in CRI, those RPCs only
return a single-use URL (valid for one minute); the kubelet (or any client) then connects to
it and upgrades the HTTP connection to a bidirectional stream.

Protocol `pinnace-stream/1` (docs/cri.md):
  request   GET /exec/<token> HTTP/1.1 | /attach/<token> | /portforward/<token>?port=N
            with `Connection: Upgrade` and `Upgrade: pinnace-stream/1`
  response  HTTP/1.1 101 Switching Protocols, then
  exec and attach: frames of 1 byte channel + 4 bytes big-endian length + payload, on the
            channels Kubernetes uses (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize).
            An empty stdin frame closes stdin; a resize payload is {"width": W, "height": H};
            the last frame is a status frame {"exit_code": N} (or {"error": "..."}).
  portforward: the raw TCP byte stream of the pod's port, relayed both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from docker import errors as docker_errors

from runtime_shims.docker import labels as schema
from runtime_shims.docker.backend import Backend
from runtime_shims.docker.netns import connect_in_netns
from services.machinery.logs import get_logger

log = get_logger(__name__)

PROTOCOL = "pinnace-stream/1"
TOKEN_TTL_SECONDS = 60.0
STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
_FRAME = struct.Struct(">BI")
_DOCKER_HEADER = struct.Struct(">BxxxI")


def encode_frame(channel: int, payload: bytes) -> bytes:
    return _FRAME.pack(channel, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    try:
        header = await reader.readexactly(_FRAME.size)
        channel, size = _FRAME.unpack(header)
        return channel, await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


@dataclass(frozen=True)
class Session:
    kind: str
    target: str
    cmd: tuple[str, ...] = ()
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    ports: tuple[int, ...] = ()
    expires: float = 0.0


class StreamingServer:
    def __init__(self, backend: Backend, address: str, run_blocking: Callable[..., Awaitable[Any]]) -> None:
        self.backend = backend
        self.api = backend.api
        self.address = address
        self.run_blocking = run_blocking
        self._sessions: dict[str, Session] = {}
        self._server: asyncio.AbstractServer | None = None
        self.base_url = ""

    async def start(self) -> str:
        host, _, port = self.address.rpartition(":")
        self._server = await asyncio.start_server(self._handle, host or "127.0.0.1", int(port))
        bound = self._server.sockets[0].getsockname()
        self.base_url = f"http://{bound[0]}:{bound[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def register(self, session: Session) -> str:
        now = time.monotonic()
        for token in [t for t, s in self._sessions.items() if s.expires < now]:
            del self._sessions[token]
        token = secrets.token_urlsafe(18)
        self._sessions[token] = Session(**{**session.__dict__, "expires": now + TOKEN_TTL_SECONDS})
        return f"{self.base_url}/{session.kind}/{token}"

    # ---------------------------------------------------------------- connection handling

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            request_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
            parts = request_line.split(" ")
            url = urlsplit(parts[1] if len(parts) > 1 else "/")
            segments = url.path.strip("/").split("/")
            session = self._sessions.pop(segments[1], None) if len(segments) == 2 else None
            if session is None or session.kind != segments[0] or session.expires < time.monotonic():
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "
                + PROTOCOL.encode()
                + b"\r\n\r\n"
            )
            await writer.drain()
            if session.kind == "portforward":
                await self._port_forward(session, parse_qs(url.query), reader, writer)
            else:
                await self._exec_or_attach(session, reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError) as exc:
            log.debug("stream ended", error=str(exc))
        except Exception as exc:
            log.warning("stream failed", error=str(exc))
            with contextlib.suppress(Exception):
                writer.write(encode_frame(STATUS, json.dumps({"error": str(exc)}).encode()))
        finally:
            with contextlib.suppress(Exception):
                await writer.drain()
                writer.close()

    async def _docker_stream(self, session: Session) -> tuple[Any, str]:
        """Start the exec (or attach) and return the hijacked Docker socket and exec id."""
        if session.kind == "exec":
            created = await self.run_blocking(
                self.api.exec_create,
                session.target,
                list(session.cmd),
                stdout=session.stdout,
                stderr=session.stderr,
                stdin=session.stdin,
                tty=session.tty,
            )
            exec_id = created["Id"]
            raw = await self.run_blocking(self.api.exec_start, exec_id, socket=True, tty=session.tty)
            return raw, exec_id
        params = {
            "stdin": int(session.stdin),
            "stdout": int(session.stdout),
            "stderr": int(session.stderr),
            "stream": 1,
        }
        raw = await self.run_blocking(self.api.attach_socket, session.target, params)
        return raw, ""

    async def _exec_or_attach(
        self, session: Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        raw, exec_id = await self._docker_stream(session)
        sock: socket.socket = getattr(raw, "_sock", raw)
        dup = socket.socket(fileno=os.dup(sock.fileno()))
        raw.close()
        d_reader, d_writer = await asyncio.open_unix_connection(sock=dup)

        async def client_to_docker() -> None:
            while True:
                frame = await read_frame(reader)
                if frame is None:
                    return
                channel, payload = frame
                if channel == STDIN:
                    if not payload:
                        with contextlib.suppress(OSError):
                            d_writer.write_eof()
                        continue
                    d_writer.write(payload)
                    await d_writer.drain()
                elif channel == RESIZE:
                    size = json.loads(payload)
                    resize = self.api.exec_resize if exec_id else self.api.resize
                    await self.run_blocking(
                        resize,
                        exec_id or session.target,
                        height=int(size["height"]),
                        width=int(size["width"]),
                    )

        async def docker_to_client() -> None:
            if session.tty:
                while chunk := await d_reader.read(65536):
                    writer.write(encode_frame(STDOUT, chunk))
                    await writer.drain()
                return
            while True:
                try:
                    header = await d_reader.readexactly(_DOCKER_HEADER.size)
                except asyncio.IncompleteReadError:
                    return
                stream, size = _DOCKER_HEADER.unpack(header)
                payload = await d_reader.readexactly(size)
                writer.write(encode_frame(STDERR if stream == 2 else STDOUT, payload))
                await writer.drain()

        upstream = asyncio.create_task(client_to_docker())
        try:
            await docker_to_client()
        finally:
            upstream.cancel()
            with contextlib.suppress(BaseException):
                await upstream
            d_writer.close()
        writer.write(
            encode_frame(STATUS, json.dumps({"exit_code": await self._exit_code(session, exec_id)}).encode())
        )

    async def _exit_code(self, session: Session, exec_id: str) -> int:
        with contextlib.suppress(docker_errors.DockerException):
            if exec_id:
                for _ in range(50):
                    info = await self.run_blocking(self.api.exec_inspect, exec_id)
                    if not info.get("Running"):
                        return int(info.get("ExitCode") or 0)
                    await asyncio.sleep(0.02)
            else:
                info = await self.run_blocking(self.api.inspect_container, session.target)
                return int(info["State"].get("ExitCode") or 0)
        return -1

    async def _port_forward(
        self,
        session: Session,
        query: dict[str, list[str]],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        port = int((query.get("port") or ["0"])[0])
        if not 0 < port <= 65535 or (session.ports and port not in session.ports):
            raise ValueError(f"port {port} was not requested for this port-forward session")
        info = await self.run_blocking(
            self.backend.inspect, session.target, schema.TYPE_SANDBOX, "pod sandbox"
        )
        pid = int(info["State"].get("Pid") or 0)
        if pid <= 0:
            raise ValueError("the pod sandbox is not running")
        labels = info["Config"]["Labels"]
        netns = (
            "/proc/self/ns/net"
            if schema.parse_sandbox(info["Id"], labels).host_network
            else f"/proc/{pid}/ns/net"
        )
        sock = await self.run_blocking(connect_in_netns, netns, "127.0.0.1", port)
        sock.setblocking(False)
        p_reader, p_writer = await asyncio.open_connection(sock=sock)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            with contextlib.suppress(OSError):
                if dst.can_write_eof():
                    dst.write_eof()

        await asyncio.gather(pump(reader, p_writer), pump(p_reader, writer))
        p_writer.close()


async def open_stream(
    url: str, sock: socket.socket | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Client side: connect to a streaming URL (optionally over a given socket) and upgrade."""
    parts = urlsplit(url)
    if sock is not None:
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
    else:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: Upgrade\r\nUpgrade: {PROTOCOL}\r\n\r\n"
    )
    writer.write(request.encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return reader, writer
