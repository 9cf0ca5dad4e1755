"""userspace-mode rule shapes against interfaces.md section 3."""

from services.proxy.service_port import ServiceInfo, ServicePortName
from services.proxy.userspace.portal_rules import JUMPS, portal_rules

NAME = ServicePortName("default", "web", "http", "tcp")


def texts(rules: list) -> list[str]:
    return [f"{r.table} -A {r.chain} {r.args()}" for r in rules]


def test_cluster_ip_portals_redirect_containers_and_dnat_the_host() -> None:
    rules = portal_rules(NAME, ServiceInfo("10.96.0.10", 80, "tcp"), 41234, "0.0.0.0", "192.168.56.11")
    assert texts(rules) == [
        'nat -A KUBE-PORTALS-CONTAINER -m comment --comment "default/web:http" -p tcp -m tcp --dport 80 '
        "-d 10.96.0.10/32 -j REDIRECT --to-ports 41234",
        'nat -A KUBE-PORTALS-HOST -m comment --comment "default/web:http" -p tcp -m tcp --dport 80 '
        "-d 10.96.0.10/32 -j DNAT --to-destination 192.168.56.11:41234",
    ]


def test_specific_listen_ip_is_a_dnat_for_containers_too() -> None:
    rules = portal_rules(NAME, ServiceInfo("10.96.0.10", 80, "tcp"), 41234, "10.0.0.5", "192.168.56.11")
    assert rules[0].target == "DNAT" and rules[0].to == "10.0.0.5:41234"
    assert rules[1].to == "10.0.0.5:41234"


def test_external_ips_load_balancers_and_node_ports() -> None:
    info = ServiceInfo(
        "10.96.0.10",
        53,
        "udp",
        node_port=30053,
        external_ips=("192.168.56.200",),
        load_balancer_ips=("192.168.56.201",),
    )
    rules = texts(
        portal_rules(
            ServicePortName("kube-system", "dns", "", "udp"), info, 40000, "0.0.0.0", "192.168.56.11"
        )
    )
    c = '-m comment --comment "kube-system/dns" -p udp -m udp'
    assert rules[2:] == [
        f"nat -A KUBE-PORTALS-CONTAINER {c} --dport 53 -d 192.168.56.200/32 -m physdev ! --physdev-is-in "
        "-j REDIRECT --to-ports 40000",
        f"nat -A KUBE-PORTALS-CONTAINER {c} --dport 53 -d 192.168.56.200/32 -m addrtype --dst-type LOCAL "
        "-j REDIRECT --to-ports 40000",
        f"nat -A KUBE-PORTALS-HOST {c} --dport 53 -d 192.168.56.200/32 -m addrtype --dst-type LOCAL "
        "-j DNAT --to-destination 192.168.56.11:40000",
        f"nat -A KUBE-PORTALS-CONTAINER {c} --dport 53 -d 192.168.56.201/32 -j REDIRECT --to-ports 40000",
        f"nat -A KUBE-PORTALS-HOST {c} --dport 53 -d 192.168.56.201/32 -j DNAT --to-destination 192.168.56.11:40000",
        f"nat -A KUBE-NODEPORT-CONTAINER {c} --dport 30053 -j REDIRECT --to-ports 40000",
        f"nat -A KUBE-NODEPORT-HOST {c} --dport 30053 -j DNAT --to-destination 192.168.56.11:40000",
        # the filter rule matches the proxy port, not the node port
        f"filter -A KUBE-NODEPORT-NON-LOCAL {c} --dport 40000 -m state --state NEW -j ACCEPT",
    ]


def test_jumps_from_the_built_in_chains() -> None:
    assert [(j.table, j.chain, j.prepend, j.dst_local, j.target) for j in JUMPS] == [
        ("nat", "PREROUTING", True, False, "KUBE-PORTALS-CONTAINER"),
        ("nat", "OUTPUT", True, False, "KUBE-PORTALS-HOST"),
        ("nat", "PREROUTING", False, True, "KUBE-NODEPORT-CONTAINER"),
        ("nat", "OUTPUT", False, True, "KUBE-NODEPORT-HOST"),
        ("filter", "INPUT", True, False, "KUBE-NODEPORT-NON-LOCAL"),
    ]
    assert JUMPS[2].args() == (
        '-m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" '
        "-m addrtype --dst-type LOCAL -j KUBE-NODEPORT-CONTAINER"
    )


def test_fast_compiled_entries_equal_python_iptables_own() -> None:
    """portals.compile_rule skips python-iptables' serialize/parse round trip; the entries it
    hands to libiptc must be the ones Rule.final_check() would have produced (no root needed:
    this only parses)."""
    from services.proxy.userspace import portals

    info = ServiceInfo("10.96.0.10", 53, "udp", node_port=30053, external_ips=("192.168.56.200",))
    rules = portal_rules(ServicePortName("ns", "dns", "", "udp"), info, 40000, "0.0.0.0", "192.168.56.11")
    for rule in rules:
        reference = portals.to_iptc(rule)
        reference.final_check()
        assert portals.compile_rule(rule) == (bytes(reference.rule), bytes(reference.mask)), rule
