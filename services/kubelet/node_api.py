"""The Node API (protos/pinnace/kubelet/v1/kubelet.proto) served by the kubelet over gRPC:
container logs, exec, attach, port-forward and the stats summary. The apiserver's proxy
subresource forwards users' calls here after authorising them (docs/kubelet.md).

Exec/attach/port-forward ask the runtime for a streaming URL (CRI Exec/Attach/PortForward)
and relay between the gRPC stream and the runtime's `pinnace-stream/1` connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri
from pinnace.kubelet.v1 import kubelet_pb2 as pb
from pinnace.kubelet.v1 import kubelet_pb2_grpc as pb_grpc
from services.kubelet.cri_client import CRI, CRIError
from services.kubelet.logs import read_log
from services.kubelet.netns import SocketFactory
from services.kubelet.node_api_auth import CallerCheck
from services.kubelet.runtime_state import ContainerInfo, read_pod
from services.kubelet.stats import StatsProvider
from services.kubelet.stream_client import (
    RESIZE,
    STATUS,
    STDERR,
    STDIN,
    STDOUT,
    encode_frame,
    open_stream,
    read_frame,
)
from services.machinery.logs import get_logger

log = get_logger(__name__)

PodFinder = Callable[[str, str], core_pb2.Pod | None]
SERVICE_NAME = "pinnace.kubelet.v1.NodeAPI"


class _AbortError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class NodeAPI(pb_grpc.NodeAPIServicer):
    def __init__(
        self,
        runtime: CRI,
        sockets: SocketFactory,
        find_pod: PodFinder,
        stats: StatsProvider,
        callers: CallerCheck | None = None,
    ) -> None:
        """`callers` None: every caller is admitted (the plaintext --node-api-insecure mode)."""
        self.runtime = runtime
        self.sockets = sockets
        self.find_pod = find_pod
        self.stats = stats
        self.callers = callers

    async def _admit(self, context: Any, verb: str, subresource: str) -> None:
        """Abort with PERMISSION_DENIED (which raises) a caller the Node API does not serve,
        before anything else runs."""
        refusal = self.callers.refusal(context, verb, subresource) if self.callers is not None else None
        if refusal is not None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)

    async def _container(
        self, ref: pb.PodRef, name: str, previous: bool = False
    ) -> tuple[core_pb2.Pod, ContainerInfo]:
        pod = self.find_pod(ref.namespace, ref.name)
        if pod is None or (ref.uid and ref.uid != pod.metadata.uid):
            raise _AbortError(grpc.StatusCode.NOT_FOUND, f'pods "{ref.name}" not found')
        names = [c.name for c in (*pod.spec.containers, *pod.spec.init_containers)]
        if not name:
            if len(pod.spec.containers) != 1:
                raise _AbortError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"a container name must be specified for pod {ref.name}, choose one of: {names}",
                )
            name = pod.spec.containers[0].name
        if name not in names:
            raise _AbortError(
                grpc.StatusCode.INVALID_ARGUMENT, f"container {name} is not valid for pod {ref.name}"
            )
        state = await read_pod(self.runtime, pod.metadata.uid)
        init = name not in [c.name for c in pod.spec.containers]
        info = state.previous(name, init) if previous else state.latest(name, init)
        if info is None:
            what = "previous terminated container" if previous else "container"
            raise _AbortError(grpc.StatusCode.NOT_FOUND, f'{what} "{name}" in pod "{ref.name}" not found')
        return pod, info

    # ---------------------------------------------------------------- logs

    async def ContainerLogs(  # noqa: N802
        self, request: pb.ContainerLogsRequest, context: Any
    ) -> AsyncIterator[pb.LogChunk]:
        await self._admit(context, "get", "proxy")
        try:
            _, info = await self._container(request.pod, request.container, request.previous)
        except _AbortError as exc:
            await context.abort(exc.code, exc.message)
            return
        path = Path(info.log_path)
        if not info.log_path or not path.exists():
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no log file for container {info.name}")
            return
        since = None
        if request.HasField("since_seconds"):
            since = time.time() - request.since_seconds

        async def running() -> bool:
            try:
                return (await self.runtime.container_status(info.id)).state == cri.CONTAINER_RUNNING
            except CRIError:
                return False

        async for chunk in read_log(
            path,
            tail=request.tail_lines if request.HasField("tail_lines") else None,
            since=since,
            timestamps=request.timestamps,
            limit_bytes=request.limit_bytes if request.HasField("limit_bytes") else None,
            follow=request.follow and not request.previous,
            running=running,
        ):
            yield pb.LogChunk(data=chunk)

    # ---------------------------------------------------------------- exec and attach

    async def Exec(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.ExecInput], context: Any
    ) -> AsyncIterator[pb.ExecOutput]:
        async for output in self._stream_command(request_iterator, context, attach=False):
            yield output

    async def Attach(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.ExecInput], context: Any
    ) -> AsyncIterator[pb.ExecOutput]:
        async for output in self._stream_command(request_iterator, context, attach=True):
            yield output

    async def _stream_command(
        self, requests: AsyncIterator[pb.ExecInput], context: Any, *, attach: bool
    ) -> AsyncIterator[pb.ExecOutput]:
        await self._admit(context, "create", "proxy")
        first = await anext(requests, None)
        if first is None or not first.HasField("start"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must carry start")
            return
        start = first.start
        stdout, stderr = (
            (start.stdout, start.stderr) if (start.stdout or start.stderr) else (True, not start.tty)
        )
        try:
            _, info = await self._container(start.pod, start.container)
            if not info.running:
                raise _AbortError(
                    grpc.StatusCode.FAILED_PRECONDITION, f"container {info.name} is not running"
                )
            if attach:
                request: Any = cri.AttachRequest(
                    container_id=info.id, stdin=start.stdin, tty=start.tty, stdout=stdout, stderr=stderr
                )
                url = (await self.runtime.call("Attach", request)).url
            else:
                if not start.command:
                    raise _AbortError(grpc.StatusCode.INVALID_ARGUMENT, "a command is required")
                request = cri.ExecRequest(
                    container_id=info.id, cmd=list(start.command), tty=start.tty,
                    stdin=start.stdin, stdout=stdout, stderr=stderr,
                )  # fmt: skip
                url = (await self.runtime.call("Exec", request)).url
            reader, writer = await open_stream(url, self.sockets)
        except _AbortError as exc:
            await context.abort(exc.code, exc.message)
            return
        except (CRIError, OSError, TimeoutError) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot reach the container runtime: {exc}")
            return

        async def upstream() -> None:
            async for message in requests:
                kind = message.WhichOneof("input")
                if kind == "stdin":
                    if message.stdin:
                        writer.write(encode_frame(STDIN, message.stdin))
                elif kind == "stdin_eof":
                    writer.write(encode_frame(STDIN, b""))
                elif kind == "resize":
                    size = {"width": message.resize.width, "height": message.resize.height}
                    writer.write(encode_frame(RESIZE, json.dumps(size).encode()))
                await writer.drain()

        pump = asyncio.create_task(upstream())
        try:
            while True:
                frame = await read_frame(reader)
                if frame is None:
                    yield pb.ExecOutput(error="the stream ended without an exit status")
                    return
                channel, payload = frame
                if channel == STDOUT:
                    yield pb.ExecOutput(stdout=payload)
                elif channel == STDERR:
                    yield pb.ExecOutput(stderr=payload)
                elif channel == STATUS:
                    status = json.loads(payload or b"{}")
                    if "error" in status:
                        yield pb.ExecOutput(error=str(status["error"]))
                    else:
                        yield pb.ExecOutput(exit_code=int(status.get("exit_code", 0)))
                    return
        finally:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            writer.close()

    # ---------------------------------------------------------------- port-forward

    async def PortForward(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.PortForwardInput], context: Any
    ) -> AsyncIterator[pb.PortForwardOutput]:
        await self._admit(context, "create", "proxy")
        first = await anext(request_iterator, None)
        if first is None or not first.HasField("start"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must carry start")
            return
        start = first.start
        pod = self.find_pod(start.pod.namespace, start.pod.name)
        if pod is None or not 0 < start.port <= 65535:
            await context.abort(grpc.StatusCode.NOT_FOUND, f'pods "{start.pod.name}" not found or bad port')
            return
        try:
            state = await read_pod(self.runtime, pod.metadata.uid)
            sandbox = state.current_sandbox()
            if sandbox is None:
                raise _AbortError(grpc.StatusCode.FAILED_PRECONDITION, "the pod has no running sandbox")
            request = cri.PortForwardRequest(pod_sandbox_id=sandbox.id, port=[start.port])
            url = (await self.runtime.call("PortForward", request)).url
            reader, writer = await open_stream(f"{url}?port={start.port}", self.sockets)
        except _AbortError as exc:
            await context.abort(exc.code, exc.message)
            return
        except (CRIError, OSError, TimeoutError) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"port-forward failed: {exc}")
            return

        async def upstream() -> None:
            async for message in request_iterator:
                if message.data:
                    writer.write(message.data)
                    await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        pump = asyncio.create_task(upstream())
        try:
            while chunk := await reader.read(65536):
                yield pb.PortForwardOutput(data=chunk)
        finally:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            writer.close()

    # ---------------------------------------------------------------- stats

    async def StatsSummary(  # noqa: N802
        self, request: pb.StatsSummaryRequest, context: Any
    ) -> pb.Summary:
        await self._admit(context, "get", "stats")
        try:
            return await self.stats.summary()
        except CRIError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"container runtime: {exc}")
            raise


async def serve(
    listen: str, api: NodeAPI, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, int]:
    """Serve on `listen`: TLS with `credentials` (node_api_auth.server_credentials), plaintext
    when None."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)])
    pb_grpc.add_NodeAPIServicer_to_server(api, server)
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    if credentials is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, port
