"""Prometheus metrics of the shim: latency of every CRI call (by method and status code) and
of CNI ADD/DEL, served over HTTP when --metrics-address is set."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Histogram, start_http_server

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

RPC_LATENCY = Histogram(
    "pinnace_cri_request_duration_seconds",
    "Latency of CRI calls served by the Docker shim.",
    ["service", "method", "code"],
    buckets=_BUCKETS,
)
CNI_LATENCY = Histogram(
    "pinnace_cri_cni_duration_seconds",
    "Latency of CNI operations (the whole plugin chain) run by the Docker shim.",
    ["operation"],
    buckets=_BUCKETS,
)


def serve_metrics(address: str) -> int:
    """Start the /metrics HTTP endpoint on host:port; returns the port (0 picks a free one)."""
    host, _, port = address.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1")
    return int(server.server_address[1])


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Times every unary call; the code is OK, or the status the handler aborted with."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        service, _, method = handler_call_details.method.lstrip("/").rpartition("/")
        inner = handler.unary_unary

        async def timed(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                return await inner(request, context)
            except BaseException:
                status = context.code()
                code = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
                raise
            finally:
                RPC_LATENCY.labels(service, method, code).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
