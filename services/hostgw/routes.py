"""What the node's routing table should hold, computed from the Nodes (no I/O here).

host-gw is the notes' "direct routing": every node reaches another node's pods by routing
that node's pod CIDR via that node's address on the shared LAN, so packets cross the LAN with
pod addresses intact. Two catch-alls (DESIGN.md section 7) make sure no cluster address ever
follows a default route off the machine: `unreachable <cluster CIDR>` (pods of a node we have
no route for die here, with an ICMP error) and the service CIDR on a local device with no
ports (a ClusterIP kube-proxy did not rewrite dies here too, while locally generated traffic
still has a route, so the OUTPUT DNAT can rewrite it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from pinnace.api.core.v1 import core_pb2

VIA = "via"
UNREACHABLE = "unreachable"
DEVICE = "device"


@dataclass(frozen=True)
class Route:
    """One IPv4 route of the main table that host-gw owns."""

    dst: str  # network in CIDR form, e.g. 10.244.2.0/24
    kind: str  # VIA, UNREACHABLE or DEVICE
    gateway: str = ""  # VIA: the other node's address
    device: str = ""  # DEVICE: the local device
    src: str = ""  # DEVICE: preferred source address ("" lets the kernel choose)

    def __str__(self) -> str:
        if self.kind == VIA:
            return f"{self.dst} via {self.gateway}"
        if self.kind == UNREACHABLE:
            return f"unreachable {self.dst}"
        return f"{self.dst} dev {self.device}" + (f" src {self.src}" if self.src else "")


def ipv4_network(text: str, what: str) -> str:
    """`text` as a normalised IPv4 network; ValueError naming `what` otherwise."""
    try:
        if "/" not in text:
            raise ValueError(text)
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a CIDR (e.g. 10.244.0.0/16)") from None
    if network.version != 4:
        raise ValueError(f"{what} {text!r} is not IPv4 (host-gw routes IPv4 only)")
    return str(network)


def internal_ip(node: core_pb2.Node) -> str:
    """The node's first IPv4 InternalIP, "" when it has none."""
    for address in node.status.addresses:
        if address.type == "InternalIP":
            try:
                if ipaddress.ip_address(address.address).version == 4:
                    return address.address
            except ValueError:
                continue
    return ""


def pod_cidr(node: core_pb2.Node) -> str:
    """The node's IPv4 pod CIDR (spec.podCIDRs first, then spec.podCIDR), "" when unassigned."""
    for text in (*node.spec.pod_cidrs, node.spec.pod_cidr):
        if not text:
            continue
        try:
            return ipv4_network(text, "podCIDR")
        except ValueError:
            continue
    return ""


def node_route(node: core_pb2.Node) -> Route | None:
    """`<podCIDR> via <InternalIP>`, or None until the node has both."""
    cidr, address = pod_cidr(node), internal_ip(node)
    if not cidr or not address:
        return None
    return Route(cidr, VIA, gateway=address)


def desired_routes(
    nodes: Iterable[core_pb2.Node],
    *,
    own_node: str,
    own_ip: str,
    cluster_cidr: str,
    service_cidr: str,
    service_device: str,
) -> dict[str, Route]:
    """Every route host-gw should own, by destination. The node's own pod CIDR is not among
    them: its bridge holds the connected route once the first pod exists."""
    routes = {
        cluster_cidr: Route(cluster_cidr, UNREACHABLE),
        service_cidr: Route(service_cidr, DEVICE, device=service_device, src=own_ip),
    }
    for node in nodes:
        if node.metadata.name == own_node:
            continue
        route = node_route(node)
        if route is None or route.gateway == own_ip or route.dst in (cluster_cidr, service_cidr):
            continue
        routes[route.dst] = route
    return routes


def changes(current: dict[str, Route], desired: dict[str, Route]) -> tuple[list[Route], list[str]]:
    """(routes to add or replace, destinations to delete) turning `current` into `desired`."""
    replace = [route for dst, route in sorted(desired.items()) if current.get(dst) != route]
    delete = sorted(dst for dst in current if dst not in desired)
    return replace, delete
