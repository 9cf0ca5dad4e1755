"""Helpers of the proxy lab tests: services and endpoints through the API, and waiting for
the network to do what the API says."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from tests.integration.proxy.lab import POD_PORT, Lab, Pod


async def make_service(
    api: Client,
    pods: list[Pod],
    *,
    protocol: str = "TCP",
    svc_type: str = "ClusterIP",
    affinity_seconds: int = 0,
    port_name: str = "http",
) -> core_pb2.Service:
    name = f"s-{uuid.uuid4().hex[:8]}"
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, "default"
    svc.spec.type = svc_type
    port = svc.spec.ports.add()
    port.name, port.port, port.protocol = port_name, 80, protocol
    port.target_port.int_val = POD_PORT
    if affinity_seconds:
        svc.spec.session_affinity = "ClientIP"
        svc.spec.session_affinity_config.client_ip.timeout_seconds = affinity_seconds
    created = await api.create(svc)
    eps = core_pb2.Endpoints()
    eps.metadata.name, eps.metadata.namespace = name, "default"
    fill_endpoints(eps, pods, protocol, port_name)
    await api.create(eps)
    return created


def fill_endpoints(
    eps: core_pb2.Endpoints, pods: list[Pod], protocol: str = "TCP", port_name: str = "http"
) -> None:
    del eps.subsets[:]
    if not pods:
        return
    subset = eps.subsets.add()
    for pod in pods:
        address = subset.addresses.add()
        address.ip, address.node_name = pod.ip, pod.node
    endpoint_port = subset.ports.add()
    endpoint_port.name, endpoint_port.port, endpoint_port.protocol = port_name, POD_PORT, protocol


async def set_endpoints(api: Client, svc: core_pb2.Service, pods: list[Pod]) -> None:
    eps = await api.get("endpoints", svc.metadata.name, "default")
    assert isinstance(eps, core_pb2.Endpoints)
    fill_endpoints(eps, pods, svc.spec.ports[0].protocol)
    await api.update(eps)


async def eventually(
    lab: Lab, netns: str, probe: Callable[..., Any], check: Callable[[Any], bool], *args: Any
) -> Any:
    """Run `probe(*args)` in `netns` until `check` accepts its answer (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        answer = await lab.threads(netns).run(probe, *args)
        if check(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{probe.__name__}{args} in {netns}: last answer {answer!r}")
        await asyncio.sleep(0.1)


def names(pods: list[Pod]) -> set[str]:
    return {p.name for p in pods}
