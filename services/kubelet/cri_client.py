"""The kubelet's side of CRI: every call to the runtime goes through `CRI.call`, which adds
a deadline and records its latency, so one place decides how long the kubelet waits for the
runtime and what the metrics see.

A failed call raises `CRIError`; callers treat it as "the runtime's state is unknown right
now", never as "there is nothing": a kubelet that read an error as an empty list would kill
or recreate pods whenever the shim restarts (DESIGN.md principle 4)."""

from __future__ import annotations

import time
from typing import Any

import grpc

from pinnace.cri.v1 import api_pb2 as cri
from pinnace.cri.v1 import api_pb2_grpc as cri_grpc
from services.kubelet.metrics import CRI_SECONDS

CRI_VERSION = "v1"


class CRIError(Exception):
    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.method, self.code, self.details = method, code, details

    @property
    def not_found(self) -> bool:
        return self.code == grpc.StatusCode.NOT_FOUND


_IMAGE_METHODS = frozenset({"ListImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"})


def endpoint_target(endpoint: str) -> str:
    """A socket path or a gRPC target (unix://..., host:port) as grpc wants it."""
    if endpoint.startswith(("unix:", "dns:", "ipv4:", "ipv6:")):
        return endpoint
    if endpoint.startswith("/"):
        return f"unix://{endpoint}"
    return endpoint


class CRI:
    def __init__(self, endpoint: str, *, timeout: float = 120.0) -> None:
        options = [
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        self.channel = grpc.aio.insecure_channel(endpoint_target(endpoint), options=options)
        self.runtime = cri_grpc.RuntimeServiceStub(self.channel)
        self.images = cri_grpc.ImageServiceStub(self.channel)
        self.timeout = timeout

    async def close(self) -> None:
        await self.channel.close(None)

    async def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        stub = self.images if method in _IMAGE_METHODS else self.runtime
        started = time.monotonic()
        code = "OK"
        try:
            return await getattr(stub, method)(request, timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code().name
            raise CRIError(method, exc.code(), exc.details() or "") from None
        finally:
            CRI_SECONDS.labels(method, code).observe(time.monotonic() - started)

    # ---------------------------------------------------------------- typed helpers

    async def version(self) -> cri.VersionResponse:
        response: cri.VersionResponse = await self.call(
            "Version", cri.VersionRequest(version=CRI_VERSION), 10
        )
        return response

    async def status(self) -> cri.StatusResponse:
        response: cri.StatusResponse = await self.call("Status", cri.StatusRequest(), 10)
        return response

    async def list_sandboxes(self, labels: dict[str, str] | None = None) -> list[cri.PodSandbox]:
        request = cri.ListPodSandboxRequest(filter=cri.PodSandboxFilter(label_selector=labels or {}))
        response = await self.call("ListPodSandbox", request)
        return list(response.items)

    async def sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus:
        response = await self.call("PodSandboxStatus", cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))
        status: cri.PodSandboxStatus = response.status
        return status

    async def list_containers(self, labels: dict[str, str] | None = None) -> list[cri.Container]:
        request = cri.ListContainersRequest(filter=cri.ContainerFilter(label_selector=labels or {}))
        response = await self.call("ListContainers", request)
        return list(response.containers)

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        response = await self.call("ContainerStatus", cri.ContainerStatusRequest(container_id=container_id))
        status: cri.ContainerStatus = response.status
        return status

    async def stop_container(self, container_id: str, grace: int) -> None:
        request = cri.StopContainerRequest(container_id=container_id, timeout=max(grace, 0))
        await self.call("StopContainer", request, timeout=grace + self.timeout)

    async def remove_container(self, container_id: str) -> None:
        await self.call("RemoveContainer", cri.RemoveContainerRequest(container_id=container_id))

    async def stop_sandbox(self, sandbox_id: str) -> None:
        await self.call("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def remove_sandbox(self, sandbox_id: str) -> None:
        await self.call("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: int) -> cri.ExecSyncResponse:
        request = cri.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout)
        response: cri.ExecSyncResponse = await self.call("ExecSync", request, timeout=timeout + 10)
        return response

    async def image_status(self, image: str) -> cri.Image | None:
        response = await self.call("ImageStatus", cri.ImageStatusRequest(image=cri.ImageSpec(image=image)))
        return response.image if response.HasField("image") and response.image.id else None

    async def pull_image(self, image: str) -> str:
        response = await self.call("PullImage", cri.PullImageRequest(image=cri.ImageSpec(image=image)))
        return str(response.image_ref)
