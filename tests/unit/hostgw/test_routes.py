"""The desired routing table, computed from Nodes (pure functions)."""

from __future__ import annotations

import pytest

from pinnace.api.core.v1 import core_pb2
from services.hostgw.routes import (
    DEVICE,
    UNREACHABLE,
    VIA,
    Route,
    changes,
    desired_routes,
    ipv4_network,
    node_route,
)


def node(name: str, cidr: str = "", ip: str = "", *, cidrs: tuple[str, ...] = ()) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = name
    n.spec.pod_cidr = cidr
    n.spec.pod_cidrs.extend(cidrs)
    if ip:
        n.status.addresses.add(type="Hostname", address=name)
        n.status.addresses.add(type="InternalIP", address=ip)
    return n


def desired(*nodes: core_pb2.Node, own: str = "n1", own_ip: str = "192.168.56.11") -> dict[str, Route]:
    return desired_routes(
        nodes,
        own_node=own,
        own_ip=own_ip,
        cluster_cidr="10.244.0.0/16",
        service_cidr="10.96.0.0/12",
        service_device="pinnace-svc",
    )


def test_every_other_node_is_routed_via_its_internal_ip_and_catch_alls_are_always_there():
    routes = desired(
        node("n1", "10.244.1.0/24", "192.168.56.11"),
        node("n2", "10.244.2.0/24", "192.168.56.12"),
        node("n3", "10.244.3.0/24", "192.168.56.13"),
    )
    assert routes == {
        "10.244.0.0/16": Route("10.244.0.0/16", UNREACHABLE),
        "10.96.0.0/12": Route("10.96.0.0/12", DEVICE, device="pinnace-svc", src="192.168.56.11"),
        "10.244.2.0/24": Route("10.244.2.0/24", VIA, gateway="192.168.56.12"),
        "10.244.3.0/24": Route("10.244.3.0/24", VIA, gateway="192.168.56.13"),
    }


def test_catch_alls_exist_before_any_node_is_known():
    assert set(desired(own_ip="")) == {"10.244.0.0/16", "10.96.0.0/12"}
    assert desired(own_ip="")["10.96.0.0/12"].src == ""


def test_nodes_without_cidr_or_address_wait():
    routes = desired(node("n2", "", "192.168.56.12"), node("n3", "10.244.3.0/24", ""))
    assert set(routes) == {"10.244.0.0/16", "10.96.0.0/12"}


def test_pod_cidrs_list_wins_and_ipv6_is_skipped():
    n = node("n2", "fd00::/64", "192.168.56.12", cidrs=("fd00::/64", "10.244.7.0/24"))
    assert node_route(n) == Route("10.244.7.0/24", VIA, gateway="192.168.56.12")


def test_a_node_claiming_our_address_or_a_catch_all_is_not_routed():
    routes = desired(
        node("twin", "10.244.9.0/24", "192.168.56.11"), node("odd", "10.244.0.0/16", "192.168.56.20")
    )
    assert set(routes) == {"10.244.0.0/16", "10.96.0.0/12"}


def test_changes_replace_what_differs_and_delete_what_is_gone():
    current = {
        "10.244.2.0/24": Route("10.244.2.0/24", VIA, gateway="192.168.56.12"),
        "10.244.3.0/24": Route("10.244.3.0/24", VIA, gateway="192.168.56.99"),
        "10.244.4.0/24": Route("10.244.4.0/24", VIA, gateway="192.168.56.14"),
    }
    wanted = {
        "10.244.2.0/24": Route("10.244.2.0/24", VIA, gateway="192.168.56.12"),
        "10.244.3.0/24": Route("10.244.3.0/24", VIA, gateway="192.168.56.13"),
        "10.244.0.0/16": Route("10.244.0.0/16", UNREACHABLE),
    }
    replace, delete = changes(current, wanted)
    assert replace == [wanted["10.244.0.0/16"], wanted["10.244.3.0/24"]]
    assert delete == ["10.244.4.0/24"]
    assert changes(wanted, wanted) == ([], [])


@pytest.mark.parametrize(
    ("text", "message"),
    [("10.244.0.0/33", "is not a CIDR"), ("pods", "is not a CIDR"), ("fd00::/48", "is not IPv4")],
)
def test_bad_cidrs_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        ipv4_network(text, "--cluster-cidr")
