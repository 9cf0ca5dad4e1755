"""The server as any gRPC client sees it: reflection, health, and plain stubs."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from pinnace.apiserver.v1 import apiserver_pb2, apiserver_pb2_grpc
from services.apiserver.server import APIServer


async def test_health_and_reflection(server: APIServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service="pinnace.apiserver.v1.API"))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def ask() -> object:
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        async for response in stub.ServerReflectionInfo(ask()):
            names = {s.name for s in response.list_services_response.service}
            assert "pinnace.apiserver.v1.API" in names
            break


async def test_errors_carry_a_kubernetes_status(server: APIServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = apiserver_pb2_grpc.APIStub(channel)
        try:
            await stub.Get(apiserver_pb2.GetRequest(resource="pods", namespace="default", name="nope"))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            assert exc.details() == 'pods "nope" not found'
            keys = [key for key, _ in exc.trailing_metadata() or ()]
            assert "pinnace-status-bin" in keys
        else:
            raise AssertionError("expected NOT_FOUND")
