"""The apiserver's NodeProxy service from the client side: a pod's logs, exec and attach
sessions, port-forwarding, and a node's stats summary (protos/pinnace/apiserver/v1/
nodeproxy.proto). The messages are the kubelet's own (pinnace.kubelet.v1); errors are raised as
services.client.errors exceptions, like every other API call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from pinnace.apiserver.v1 import nodeproxy_pb2, nodeproxy_pb2_grpc
from pinnace.kubelet.v1 import kubelet_pb2 as kpb
from services.client.errors import from_rpc_error

CHUNK_BYTES = 32 * 1024


async def _write(call: Any, message: Any) -> bool:
    """Write to a stream call: True once written, False when the call had already ended well;
    when it ended with an error, raise that status (gRPC itself reports only "RPC already
    finished" or "Internal error from Core" for the write)."""
    try:
        await call.write(message)
        return True
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
        if not call.done():
            if isinstance(exc, grpc.aio.AioRpcError):
                raise from_rpc_error(exc) from None
            raise
    code = await call.code()
    if code == grpc.StatusCode.OK:
        return False
    final = grpc.aio.AioRpcError(
        code, await call.initial_metadata(), await call.trailing_metadata(), await call.details(), None
    )
    raise from_rpc_error(final)


class CommandSession:
    """One exec or attach: write stdin, resize the terminal, read stdout/stderr in order, and
    learn the command's exit code at the end (`error` instead when the runtime failed)."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self.exit_code: int | None = None
        self.error: str = ""

    async def write(self, data: bytes) -> None:
        if data:
            await self._send(kpb.ExecInput(stdin=data))

    async def close_stdin(self) -> None:
        """End of input for the command (its stdin reads EOF); the session stays open."""
        await self._send(kpb.ExecInput(stdin_eof=True))

    async def resize(self, width: int, height: int) -> None:
        await self._send(kpb.ExecInput(resize=kpb.TerminalSize(width=width, height=height)))

    async def _send(self, message: kpb.ExecInput) -> None:
        await _write(self._call, message)  # after the command ended, input is dropped

    async def output(self) -> AsyncIterator[tuple[str, bytes]]:
        """("stdout" | "stderr", bytes) in the order the command wrote them; afterwards
        exit_code (or error) is set."""
        try:
            async for message in self._call:
                kind = message.WhichOneof("output")
                if kind in ("stdout", "stderr"):
                    yield kind, getattr(message, kind)
                elif kind == "exit_code":
                    self.exit_code = message.exit_code
                elif kind == "error":
                    self.error = message.error
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def wait(self) -> tuple[bytes, bytes, int | None]:
        """Everything the command writes and its exit code (for non-interactive use)."""
        out, err = bytearray(), bytearray()
        async for kind, data in self.output():
            (out if kind == "stdout" else err).extend(data)
        return bytes(out), bytes(err), self.exit_code

    def cancel(self) -> None:
        self._call.cancel()


class PortForwardStream:
    """One TCP connection to a port inside a pod: send bytes, half-close, receive bytes."""

    def __init__(self, call: Any) -> None:
        self._call = call

    async def send(self, data: bytes) -> None:
        if not await _write(self._call, kpb.PortForwardInput(data=data)):
            raise BrokenPipeError("the pod closed the connection")

    async def close_write(self) -> None:
        with contextlib.suppress(asyncio.InvalidStateError):
            await self._call.done_writing()

    async def received(self) -> AsyncIterator[bytes]:
        try:
            async for message in self._call:
                if message.data:
                    yield message.data
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    def cancel(self) -> None:
        self._call.cancel()


@dataclass
class PortForwarder:
    """Local listeners, each relaying every accepted connection to a port of the pod, as
    `kubectl port-forward` does. `ports` maps each listening local port to the pod's port."""

    servers: list[asyncio.Server]
    ports: list[tuple[int, int]]
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self.tasks):
            task.cancel()
        for server in self.servers:
            await server.wait_closed()
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await task


class NodeProxyClient:
    def __init__(self, channel: grpc.aio.Channel, *, timeout: float = 30.0) -> None:
        self.stub = nodeproxy_pb2_grpc.NodeProxyStub(channel)
        self.timeout = timeout

    async def pod_logs(
        self,
        name: str,
        namespace: str = "default",
        *,
        container: str = "",
        follow: bool = False,
        previous: bool = False,
        timestamps: bool = False,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        limit_bytes: int | None = None,
    ) -> AsyncIterator[bytes]:
        """The container's log as it comes (with follow, until the container stops or the
        caller stops iterating)."""
        request = kpb.ContainerLogsRequest(
            pod=kpb.PodRef(namespace=namespace, name=name),
            container=container,
            follow=follow,
            previous=previous,
            timestamps=timestamps,
            tail_lines=tail_lines,
            since_seconds=since_seconds,
            limit_bytes=limit_bytes,
        )
        call = self.stub.PodLogs(request, timeout=None if follow else self.timeout)
        try:
            async for chunk in call:
                yield chunk.data
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def _command(self, method: Any, start: kpb.ExecStart) -> CommandSession:
        call = method()
        try:
            await call.write(kpb.ExecInput(start=start))
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        if not start.stdin:
            await call.done_writing()
        return CommandSession(call)

    async def exec(
        self,
        name: str,
        command: list[str],
        namespace: str = "default",
        *,
        container: str = "",
        stdin: bool = False,
        tty: bool = False,
    ) -> CommandSession:
        start = kpb.ExecStart(
            pod=kpb.PodRef(namespace=namespace, name=name),
            container=container,
            command=command,
            stdin=stdin,
            tty=tty,
        )
        return await self._command(self.stub.PodExec, start)

    async def attach(
        self,
        name: str,
        namespace: str = "default",
        *,
        container: str = "",
        stdin: bool = False,
        tty: bool = False,
    ) -> CommandSession:
        start = kpb.ExecStart(
            pod=kpb.PodRef(namespace=namespace, name=name), container=container, stdin=stdin, tty=tty
        )
        return await self._command(self.stub.PodAttach, start)

    async def port_forward_stream(
        self, name: str, port: int, namespace: str = "default"
    ) -> PortForwardStream:
        call = self.stub.PodPortForward()
        start = kpb.PortForwardStart(pod=kpb.PodRef(namespace=namespace, name=name), port=port)
        try:
            await call.write(kpb.PortForwardInput(start=start))
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        return PortForwardStream(call)

    async def port_forward(
        self,
        name: str,
        ports: list[tuple[int, int]],
        namespace: str = "default",
        *,
        address: str = "127.0.0.1",
        on_connection: Callable[[int], None] | None = None,
        on_error: Callable[[int, Exception], None] | None = None,
    ) -> PortForwarder:
        """Listen on address:local for each (local, remote) pair (local 0: any free port) and
        relay every connection to the pod's remote port through the apiserver."""
        forwarder = PortForwarder([], [])
        try:
            for local, remote in ports:
                server = await asyncio.start_server(
                    self._relay_handler(name, namespace, remote, forwarder, on_connection, on_error),
                    address,
                    local,
                )
                forwarder.servers.append(server)
                forwarder.ports.append((server.sockets[0].getsockname()[1], remote))
        except OSError:
            await forwarder.close()
            raise
        return forwarder

    def _relay_handler(
        self,
        name: str,
        namespace: str,
        remote: int,
        forwarder: PortForwarder,
        on_connection: Callable[[int], None] | None,
        on_error: Callable[[int, Exception], None] | None,
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            forwarder.tasks.add(task)
            local = writer.get_extra_info("sockname")[1]
            if on_connection is not None:
                on_connection(local)
            try:
                await self._relay(name, namespace, remote, reader, writer)
            except Exception as exc:
                if on_error is not None:
                    on_error(local, exc)
            finally:
                forwarder.tasks.discard(task)
                writer.close()

        return handle

    async def _relay(
        self,
        name: str,
        namespace: str,
        remote: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        stream = await self.port_forward_stream(name, remote, namespace)

        async def upstream() -> None:
            while data := await reader.read(CHUNK_BYTES):
                await stream.send(data)
            await stream.close_write()

        pump = asyncio.create_task(upstream())
        try:
            async for data in stream.received():
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()
        finally:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            stream.cancel()

    async def node_stats(self, node_name: str) -> kpb.Summary:
        try:
            summary: kpb.Summary = await self.stub.NodeStats(
                nodeproxy_pb2.NodeStatsRequest(node_name=node_name), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        return summary
