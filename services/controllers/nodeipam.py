"""Node IPAM (the range allocator): every node gets a podCIDR, a /24 by default, from the
cluster CIDR; a deleted node's CIDR goes back to the pool.

The pool is rebuilt from the nodes the informer lists before any allocation, so a restarted
controller-manager never hands out a CIDR a node already holds; a write at the cached
resourceVersion makes two allocators unable to give one node two CIDRs."""

from __future__ import annotations

import ipaddress

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.client.errors import NotFoundError
from services.client.events import NORMAL, WARNING
from services.controllers.base import Controller, ControllerContext


class CIDRSet:
    """The subnets of one cluster CIDR, handed out lowest first."""

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.network = ipaddress.ip_network(cluster_cidr)
        if mask_size < self.network.prefixlen:
            raise ValueError(f"node CIDR mask /{mask_size} is larger than the cluster CIDR {cluster_cidr}")
        self.mask_size = mask_size
        self.size = 2 ** (mask_size - self.network.prefixlen)
        self.used: set[int] = set()
        self._next = 0

    def _index(self, cidr: str) -> int | None:
        try:
            subnet = ipaddress.ip_network(cidr)
        except ValueError:
            return None
        if subnet.version != self.network.version or subnet.prefixlen != self.mask_size:
            return None
        if not subnet.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        step = 2 ** (subnet.max_prefixlen - self.mask_size)
        return int((int(subnet.network_address) - int(self.network.network_address)) // step)

    def _cidr(self, index: int) -> str:
        step = 2 ** (self.network.max_prefixlen - self.mask_size)
        address = ipaddress.ip_address(int(self.network.network_address) + index * step)
        return f"{address}/{self.mask_size}"

    def occupy(self, cidr: str) -> bool:
        index = self._index(cidr)
        if index is None:
            return False
        self.used.add(index)
        return True

    def release(self, cidr: str) -> None:
        index = self._index(cidr)
        if index is not None:
            self.used.discard(index)

    def allocate(self) -> str | None:
        for offset in range(self.size):
            index = (self._next + offset) % self.size
            if index not in self.used:
                self.used.add(index)
                self._next = (index + 1) % self.size
                return self._cidr(index)
        return None


class NodeIpamController(Controller):
    name = "nodeipam"
    default_workers = 1  # allocation is serial by design: one pool, no double booking

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.cidrs = CIDRSet(self.settings.cluster_cidr, self.settings.node_cidr_mask_size)
        self.nodes = self.informer("nodes")
        self.nodes.add_handlers(
            on_add=self._node_seen, on_update=lambda _o, n: self._node_seen(n), on_delete=self._node_gone
        )

    def _node_seen(self, node: Message) -> None:
        assert isinstance(node, core_pb2.Node)
        if node.spec.pod_cidr:
            self.cidrs.occupy(node.spec.pod_cidr)
        else:
            self.enqueue(node.metadata.name)

    def _node_gone(self, node: Message) -> None:
        assert isinstance(node, core_pb2.Node)
        if node.spec.pod_cidr:
            self.cidrs.release(node.spec.pod_cidr)

    async def sync(self, name: str) -> None:
        cached = self.nodes.store.get(name)
        if not isinstance(cached, core_pb2.Node) or cached.spec.pod_cidr:
            return
        cidr = self.cidrs.allocate()
        if cidr is None:
            self.recorder.event(
                cached, WARNING, "CIDRNotAvailable", f"Node {name} status is now: CIDRNotAvailable"
            )
            raise RuntimeError(f"no pod CIDR left in {self.settings.cluster_cidr}")
        node = core_pb2.Node()
        node.CopyFrom(cached)
        node.spec.pod_cidr = cidr
        del node.spec.pod_cidrs[:]
        node.spec.pod_cidrs.append(cidr)
        try:
            await self.client.update(node)
        except NotFoundError:
            self.cidrs.release(cidr)
            return
        except Exception:
            self.cidrs.release(cidr)
            raise
        self.recorder.event(node, NORMAL, "CIDRAssignmentSucceeded", f"Node {name} got podCIDR {cidr}")
