"""host-gw: keep this node's routes to every other node's pods in step with the Nodes.

Level-triggered: any Node event (and a periodic resync, which also repairs routes someone
removed by hand) wakes one sync that reads the informer's cache, computes the whole desired
table and applies the difference with what the kernel holds under host-gw's protocol. A
route the kernel refuses (a gateway off the LAN) is logged and retried at the next sync, and
does not stop the others. Stopping leaves the routes in place, so pod traffic keeps flowing
while host-gw restarts (as it does with flannel).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.informer import Informer
from services.hostgw.netlink import RouteTable
from services.hostgw.routes import changes, desired_routes, internal_ip, ipv4_network
from services.machinery.logs import get_logger

log = get_logger("hostgw")
DEFAULT_SERVICE_DEVICE = "pinnace-svc"


@dataclass(frozen=True)
class HostGWConfig:
    node_name: str
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/12"
    # The node's own address (preferred source of service traffic); "" takes the Node's InternalIP.
    node_ip: str = ""
    service_device: str = DEFAULT_SERVICE_DEVICE
    resync_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.node_name:
            raise ValueError("host-gw needs the node's name (--node-name)")
        object.__setattr__(self, "cluster_cidr", ipv4_network(self.cluster_cidr, "--cluster-cidr"))
        object.__setattr__(self, "service_cidr", ipv4_network(self.service_cidr, "--service-cidr"))
        if not 0 < len(self.service_device) < 16:
            raise ValueError(f"--service-device {self.service_device!r} is not a valid device name")


class HostGateway:
    def __init__(self, client: Client, table: RouteTable, config: HostGWConfig) -> None:
        self.client = client
        self.table = table
        self.config = config
        self.nodes = Informer(client, "nodes")
        self.nodes.add_handlers(self._changed, lambda _old, _new: self._changed(), self._changed)
        self._wake = asyncio.Event()
        self.synced = asyncio.Event()  # set after every successful sync (tests wait on it)
        self.failures = 0  # routes the kernel refused in the last sync

    def _changed(self, *_: object) -> None:
        self._wake.set()

    def own_ip(self) -> str:
        if self.config.node_ip:
            return self.config.node_ip
        own = self.nodes.store.get(self.config.node_name)
        return internal_ip(own) if isinstance(own, core_pb2.Node) else ""

    async def sync(self) -> None:
        nodes = [n for n in self.nodes.store.list() if isinstance(n, core_pb2.Node)]
        desired = desired_routes(
            nodes,
            own_node=self.config.node_name,
            own_ip=self.own_ip(),
            cluster_cidr=self.config.cluster_cidr,
            service_cidr=self.config.service_cidr,
            service_device=self.config.service_device,
        )
        await self.table.ensure_device(self.config.service_device)
        replace, delete = changes(await self.table.owned(), desired)
        failures = 0
        for route in replace:
            try:
                await self.table.replace(route)
                log.info("route set", route=str(route))
            except OSError as exc:
                failures += 1
                log.warning("route refused", route=str(route), error=str(exc))
        for dst in delete:
            try:
                await self.table.delete(dst)
                log.info("route removed", dst=dst)
            except OSError as exc:
                failures += 1
                log.warning("route removal refused", dst=dst, error=str(exc))
        self.failures = failures

    async def run(self) -> None:
        """Until cancelled: the catch-all routes at once, then a sync per change of the Nodes."""
        self.nodes.start()
        try:
            await self.sync()  # catch-alls before the first list: nothing leaks while we wait
            await self.nodes.wait_synced()
            while True:
                self._wake.clear()
                try:
                    await self.sync()
                    self.synced.set()
                except OSError as exc:
                    log.warning("sync failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.resync_seconds)
                await asyncio.sleep(0.05)  # coalesce a burst of node updates into one sync
        finally:
            await self.nodes.stop()
