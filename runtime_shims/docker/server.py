"""The gRPC server: runtime.v1 RuntimeService and ImageService on a unix socket (grpc.aio),
with server reflection, health checking and per-RPC metrics. Docker SDK calls block, so every
handler runs its work in a thread pool; RPCs the shim does not implement answer UNIMPLEMENTED
through the generated base classes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import grpc
from docker import errors as docker_errors
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from pinnace.cri.v1 import api_pb2 as cri
from pinnace.cri.v1 import api_pb2_grpc as cri_grpc
from runtime_shims.docker.backend import Backend
from runtime_shims.docker.config import CRI_VERSION, RUNTIME_API_VERSION, RUNTIME_NAME, ShimConfig
from runtime_shims.docker.containers import Containers
from runtime_shims.docker.errors import CRIError, from_docker
from runtime_shims.docker.images import Images
from runtime_shims.docker.metrics import MetricsInterceptor, serve_metrics
from runtime_shims.docker.sandbox import Sandboxes
from runtime_shims.docker.stats import Stats
from runtime_shims.docker.streaming import Session, StreamingServer
from services.machinery.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SERVICE_NAMES = ("runtime.v1.RuntimeService", "runtime.v1.ImageService")


class Shim:
    """Managers plus the thread pool their blocking calls run in."""

    def __init__(self, config: ShimConfig, api: Any | None = None) -> None:
        self.config = config
        self.backend = Backend(config, api)
        self.sandboxes = Sandboxes(self.backend)
        self.containers = Containers(self.backend)
        self.images = Images(self.backend)
        self.stats = Stats(self.backend)
        self.pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="cri")
        self.streaming = StreamingServer(self.backend, config.streaming_address, self.run)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self.containers.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def handles_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Turn CRIError and Docker errors into the gRPC status of the call."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except CRIError as exc:
            await context.abort(exc.code, exc.message)
        except docker_errors.DockerException as exc:
            error = from_docker(exc, method.__name__)
            await context.abort(error.code, error.message)

    return wrapper


class RuntimeService(cri_grpc.RuntimeServiceServicer):
    def __init__(self, shim: Shim) -> None:
        self.shim = shim
        self.pod_cidr = ""

    @handles_errors
    async def Version(self, request: cri.VersionRequest, context: Any) -> cri.VersionResponse:
        version = await self.shim.run(self.shim.backend.api.version)
        return cri.VersionResponse(
            version=CRI_VERSION,
            runtime_name=RUNTIME_NAME,
            runtime_version=str(version.get("Version", "")),
            runtime_api_version=RUNTIME_API_VERSION,
        )

    @handles_errors
    async def Status(self, request: cri.StatusRequest, context: Any) -> cri.StatusResponse:
        runtime = cri.RuntimeCondition(type="RuntimeReady", status=True)
        try:
            await self.shim.run(self.shim.backend.api.ping)
        except docker_errors.DockerException as exc:
            runtime = cri.RuntimeCondition(
                type="RuntimeReady", status=False, reason="DockerDaemonNotReady", message=f"docker: {exc}"
            )
        ready, reason, message = await self.shim.run(self.shim.backend.cni.status)
        network = cri.RuntimeCondition(type="NetworkReady", status=ready, reason=reason, message=message)
        response = cri.StatusResponse(
            status=cri.RuntimeStatus(conditions=[runtime, network]),
            runtime_handlers=[cri.RuntimeHandler(name="")],
        )
        if request.verbose:
            cfg = self.shim.config
            response.info["config"] = (
                f'{{"cniConfDir":"{cfg.cni_conf_dir}","cniBinDirs":"{":".join(map(str, cfg.cni_bin_dirs))}",'
                f'"podCIDR":"{self.pod_cidr}","node":"{cfg.node_name}","streaming":"{self.shim.streaming.base_url}"}}'
            )
        return response

    @handles_errors
    async def UpdateRuntimeConfig(
        self, request: cri.UpdateRuntimeConfigRequest, context: Any
    ) -> cri.UpdateRuntimeConfigResponse:
        self.pod_cidr = request.runtime_config.network_config.pod_cidr
        log.info("runtime config updated", pod_cidr=self.pod_cidr)
        return cri.UpdateRuntimeConfigResponse()

    @handles_errors
    async def RuntimeConfig(
        self, request: cri.RuntimeConfigRequest, context: Any
    ) -> cri.RuntimeConfigResponse:
        info = await self.shim.run(self.shim.backend.api.info)
        driver = cri.SYSTEMD if info.get("CgroupDriver") == "systemd" else cri.CGROUPFS
        return cri.RuntimeConfigResponse(linux=cri.LinuxRuntimeConfiguration(cgroup_driver=driver))

    # ---------------------------------------------------------------- sandboxes

    @handles_errors
    async def RunPodSandbox(
        self, request: cri.RunPodSandboxRequest, context: Any
    ) -> cri.RunPodSandboxResponse:
        sandbox_id = await self.shim.run(self.shim.sandboxes.run, request.config, request.runtime_handler)
        return cri.RunPodSandboxResponse(pod_sandbox_id=sandbox_id)

    @handles_errors
    async def StopPodSandbox(
        self, request: cri.StopPodSandboxRequest, context: Any
    ) -> cri.StopPodSandboxResponse:
        await self.shim.run(self.shim.sandboxes.stop, request.pod_sandbox_id)
        return cri.StopPodSandboxResponse()

    @handles_errors
    async def RemovePodSandbox(
        self, request: cri.RemovePodSandboxRequest, context: Any
    ) -> cri.RemovePodSandboxResponse:
        await self.shim.run(self.shim.sandboxes.remove, request.pod_sandbox_id, self.shim.containers.forget)
        return cri.RemovePodSandboxResponse()

    @handles_errors
    async def PodSandboxStatus(
        self, request: cri.PodSandboxStatusRequest, context: Any
    ) -> cri.PodSandboxStatusResponse:
        return await self.shim.run(self.shim.sandboxes.status, request.pod_sandbox_id, request.verbose)

    @handles_errors
    async def ListPodSandbox(
        self, request: cri.ListPodSandboxRequest, context: Any
    ) -> cri.ListPodSandboxResponse:
        flt = request.filter if request.HasField("filter") else None
        return cri.ListPodSandboxResponse(items=await self.shim.run(self.shim.sandboxes.list, flt))

    # ---------------------------------------------------------------- containers

    @handles_errors
    async def CreateContainer(
        self, request: cri.CreateContainerRequest, context: Any
    ) -> cri.CreateContainerResponse:
        container_id = await self.shim.run(
            self.shim.containers.create, request.pod_sandbox_id, request.config, request.sandbox_config
        )
        return cri.CreateContainerResponse(container_id=container_id)

    @handles_errors
    async def StartContainer(
        self, request: cri.StartContainerRequest, context: Any
    ) -> cri.StartContainerResponse:
        await self.shim.run(self.shim.containers.start, request.container_id)
        return cri.StartContainerResponse()

    @handles_errors
    async def StopContainer(
        self, request: cri.StopContainerRequest, context: Any
    ) -> cri.StopContainerResponse:
        await self.shim.run(self.shim.containers.stop, request.container_id, request.timeout)
        return cri.StopContainerResponse()

    @handles_errors
    async def RemoveContainer(
        self, request: cri.RemoveContainerRequest, context: Any
    ) -> cri.RemoveContainerResponse:
        await self.shim.run(self.shim.containers.remove, request.container_id)
        return cri.RemoveContainerResponse()

    @handles_errors
    async def ListContainers(
        self, request: cri.ListContainersRequest, context: Any
    ) -> cri.ListContainersResponse:
        flt = request.filter if request.HasField("filter") else None
        return cri.ListContainersResponse(containers=await self.shim.run(self.shim.containers.list, flt))

    @handles_errors
    async def ContainerStatus(
        self, request: cri.ContainerStatusRequest, context: Any
    ) -> cri.ContainerStatusResponse:
        return await self.shim.run(self.shim.containers.status, request.container_id, request.verbose)

    @handles_errors
    async def UpdateContainerResources(
        self, request: cri.UpdateContainerResourcesRequest, context: Any
    ) -> cri.UpdateContainerResourcesResponse:
        await self.shim.run(self.shim.containers.update_resources, request.container_id, request.linux)
        return cri.UpdateContainerResourcesResponse()

    @handles_errors
    async def ReopenContainerLog(
        self, request: cri.ReopenContainerLogRequest, context: Any
    ) -> cri.ReopenContainerLogResponse:
        await self.shim.run(self.shim.containers.reopen_log, request.container_id)
        return cri.ReopenContainerLogResponse()

    # ---------------------------------------------------------------- exec, attach, port-forward

    @handles_errors
    async def ExecSync(self, request: cri.ExecSyncRequest, context: Any) -> cri.ExecSyncResponse:
        return await self.shim.run(
            self.shim.containers.exec_sync, request.container_id, list(request.cmd), request.timeout
        )

    @handles_errors
    async def Exec(self, request: cri.ExecRequest, context: Any) -> cri.ExecResponse:
        if not request.cmd:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, "cmd: Required value")
        if not (request.stdin or request.stdout or request.stderr):
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, "one of stdin, stdout and stderr must be set")
        record, _ = await self.shim.run(self.shim.backend.container_record, request.container_id)
        session = Session(
            kind="exec",
            target=record.id,
            cmd=tuple(request.cmd),
            tty=request.tty,
            stdin=request.stdin,
            stdout=request.stdout,
            stderr=request.stderr and not request.tty,
        )
        return cri.ExecResponse(url=self.shim.streaming.register(session))

    @handles_errors
    async def Attach(self, request: cri.AttachRequest, context: Any) -> cri.AttachResponse:
        if not (request.stdin or request.stdout or request.stderr):
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, "one of stdin, stdout and stderr must be set")
        record, tty = await self.shim.run(self.shim.backend.container_record, request.container_id)
        session = Session(
            kind="attach",
            target=record.id,
            tty=tty,
            stdin=request.stdin,
            stdout=request.stdout,
            stderr=request.stderr and not tty,
        )
        return cri.AttachResponse(url=self.shim.streaming.register(session))

    @handles_errors
    async def PortForward(self, request: cri.PortForwardRequest, context: Any) -> cri.PortForwardResponse:
        record = await self.shim.run(self.shim.backend.sandbox_record, request.pod_sandbox_id)
        for port in request.port:
            if not 0 < port <= 65535:
                raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, f"port {port} is outside 1-65535")
        session = Session(kind="portforward", target=record.id, ports=tuple(request.port))
        return cri.PortForwardResponse(url=self.shim.streaming.register(session))

    # ---------------------------------------------------------------- stats

    @handles_errors
    async def ContainerStats(
        self, request: cri.ContainerStatsRequest, context: Any
    ) -> cri.ContainerStatsResponse:
        return cri.ContainerStatsResponse(
            stats=await self.shim.run(self.shim.stats.container, request.container_id)
        )

    @handles_errors
    async def ListContainerStats(
        self, request: cri.ListContainerStatsRequest, context: Any
    ) -> cri.ListContainerStatsResponse:
        flt = request.filter if request.HasField("filter") else None
        return cri.ListContainerStatsResponse(stats=await self.shim.run(self.shim.stats.list_containers, flt))

    @handles_errors
    async def PodSandboxStats(
        self, request: cri.PodSandboxStatsRequest, context: Any
    ) -> cri.PodSandboxStatsResponse:
        return cri.PodSandboxStatsResponse(
            stats=await self.shim.run(self.shim.stats.pod, request.pod_sandbox_id)
        )

    @handles_errors
    async def ListPodSandboxStats(
        self, request: cri.ListPodSandboxStatsRequest, context: Any
    ) -> cri.ListPodSandboxStatsResponse:
        flt = request.filter if request.HasField("filter") else None
        return cri.ListPodSandboxStatsResponse(stats=await self.shim.run(self.shim.stats.list_pods, flt))


class ImageService(cri_grpc.ImageServiceServicer):
    def __init__(self, shim: Shim) -> None:
        self.shim = shim

    @handles_errors
    async def ListImages(self, request: cri.ListImagesRequest, context: Any) -> cri.ListImagesResponse:
        flt = request.filter if request.HasField("filter") else None
        return cri.ListImagesResponse(images=await self.shim.run(self.shim.images.list, flt))

    @handles_errors
    async def ImageStatus(self, request: cri.ImageStatusRequest, context: Any) -> cri.ImageStatusResponse:
        return await self.shim.run(self.shim.images.status, request.image, request.verbose)

    @handles_errors
    async def PullImage(self, request: cri.PullImageRequest, context: Any) -> cri.PullImageResponse:
        return cri.PullImageResponse(
            image_ref=await self.shim.run(self.shim.images.pull, request.image, request.auth)
        )

    @handles_errors
    async def RemoveImage(self, request: cri.RemoveImageRequest, context: Any) -> cri.RemoveImageResponse:
        await self.shim.run(self.shim.images.remove, request.image)
        return cri.RemoveImageResponse()

    @handles_errors
    async def ImageFsInfo(self, request: cri.ImageFsInfoRequest, context: Any) -> cri.ImageFsInfoResponse:
        return await self.shim.run(self.shim.images.fs_info)


def _prepare_socket(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()


async def serve(config: ShimConfig, stop: asyncio.Event | None = None) -> None:
    """Run the shim until `stop` is set (or forever)."""
    shim = Shim(config)
    server = grpc.aio.server(
        interceptors=[MetricsInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    cri_grpc.add_RuntimeServiceServicer_to_server(RuntimeService(shim), server)
    cri_grpc.add_ImageServiceServicer_to_server(ImageService(shim), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    _prepare_socket(config.socket_path)
    server.add_insecure_port(f"unix://{config.socket_path}")
    streaming_url = await shim.streaming.start()
    metrics_port = serve_metrics(config.metrics_address) if config.metrics_address else 0
    await server.start()
    config.socket_path.chmod(0o660)
    for name in (*SERVICE_NAMES, ""):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    started = time.perf_counter()
    resumed = await shim.run(shim.containers.resume_logs)
    log.info(
        "cri shim serving",
        socket=str(config.socket_path),
        streaming=streaming_url,
        metrics_port=metrics_port,
        node=config.node_name,
        cni_conf_dir=str(config.cni_conf_dir),
        resumed_log_copiers=resumed,
        resume_seconds=round(time.perf_counter() - started, 3),
    )
    try:
        if stop is None:
            await server.wait_for_termination()
        else:
            await stop.wait()
    finally:
        await server.stop(grace=2)
        await shim.streaming.stop()
        shim.close()
        with contextlib.suppress(OSError):
            config.socket_path.unlink()
