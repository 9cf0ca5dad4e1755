"""A Node whose podCIDR arrives while its kubelet is still starting is posted Ready as soon as
the kubelet has started, not one node-status period later (a 10 s stall bench_cluster found
in the time to ready). Runs against the in-process apiserver of the unit tier."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.kubelet.config import KubeletConfig
from services.kubelet.kubelet import Kubelet
from tests.unit.apiserver.conftest import client, server  # noqa: F401
from tests.unit.kubelet.fakes import FakeCRI

CIDR = "10.244.3.0/24"


class NetworkOnCIDR(FakeCRI):
    """The runtime's network becomes ready when the kubelet hands it the podCIDR."""

    def __init__(self) -> None:
        super().__init__(network_ready=False)
        self.got_cidr = asyncio.Event()

    async def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        if method == "UpdateRuntimeConfig":
            assert request.runtime_config.network_config.pod_cidr == CIDR
            self.network_ready = True
            self.got_cidr.set()
        return None

    async def list_pod_sandboxes(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    async def list_containers(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


class StartingClient:
    """The real client. It gives the Node its podCIDR right after the kubelet registers it
    (the controller-manager's job), and holds the kubelet's Service list back until the
    runtime got that podCIDR: the podCIDR lands while the kubelet is still starting."""

    def __init__(self, real: Client, runtime: NetworkOnCIDR) -> None:
        self.real, self.runtime = real, runtime

    async def create(self, obj: Any, **kwargs: Any) -> Any:
        created = await self.real.create(obj, **kwargs)
        if isinstance(created, core_pb2.Node):
            await self.real.patch(core_pb2.Node, created.metadata.name, {"spec": {"podCIDR": CIDR}})
        return created

    async def list(self, resource: Any, *args: Any, **kwargs: Any) -> Any:
        if resource == "services":
            await self.runtime.got_cidr.wait()
        return await self.real.list(resource, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_node_ready_once_started_when_the_cidr_came_during_start(
    client: Client,  # noqa: F811
    tmp_path: Path,
) -> None:
    runtime = NetworkOnCIDR()
    # A status period far beyond the test: only the start itself can post Ready.
    config = KubeletConfig(node_name="n1", root_dir=tmp_path, node_status_update_frequency=3600)
    kubelet = Kubelet(config, StartingClient(client, runtime), runtime)  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(kubelet.start(), 30)
        node = await client.get("nodes", "n1")
        assert isinstance(node, core_pb2.Node) and node.spec.pod_cidr == CIDR
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert (ready.status, ready.reason) == ("True", "KubeletReady"), ready.message
    finally:
        await kubelet.stop()
