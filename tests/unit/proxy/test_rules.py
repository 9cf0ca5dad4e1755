"""iptables-mode rule shapes against interfaces.md section 4 (Kubernetes ~1.22)."""

from services.proxy.hashing import endpoint_chain, service_chain
from services.proxy.iptables_mode.rules import (
    JUMP_RULES,
    PortRules,
    RuleOptions,
    full_ruleset,
    nodeports_tail,
    partial_ruleset,
    port_rules,
    probability,
    static_rules,
)
from services.proxy.service_port import Endpoint, ServiceInfo, ServicePortName

NAME = ServicePortName("default", "web", "http", "tcp")
SVC = service_chain("default/web:http", "tcp")
EPS = (Endpoint("10.244.1.2", 8080), Endpoint("10.244.1.3", 8080), Endpoint("10.244.2.2", 8080))
SEPS = [endpoint_chain("default/web:http", "tcp", str(e)) for e in EPS]
OPTS = RuleOptions(cluster_cidr="10.244.0.0/16")


def chains(rules: PortRules) -> dict[str, tuple[str, ...]]:
    return dict(rules.chains)


def test_cluster_ip_with_endpoints() -> None:
    rules = port_rules(NAME, ServiceInfo("10.96.0.10", 80, "tcp"), EPS, OPTS)
    args = '-m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80'
    assert rules.nat_services == (f"-A KUBE-SERVICES {args} -j {SVC}",)
    svc = chains(rules)[SVC]
    assert svc[0] == f"-A {SVC} {args} ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"
    assert svc[1:] == (
        f'-A {SVC} -m comment --comment "default/web:http" -m statistic --mode random '
        f"--probability 0.3333333333 -j {SEPS[0]}",
        f'-A {SVC} -m comment --comment "default/web:http" -m statistic --mode random '
        f"--probability 0.5000000000 -j {SEPS[1]}",
        f'-A {SVC} -m comment --comment "default/web:http" -j {SEPS[2]}',
    )
    assert chains(rules)[SEPS[0]] == (
        f'-A {SEPS[0]} -m comment --comment "default/web:http" -s 10.244.1.2/32 -j KUBE-MARK-MASQ',
        f'-A {SEPS[0]} -m comment --comment "default/web:http" -m tcp -p tcp -j DNAT --to-destination 10.244.1.2:8080',
    )
    assert rules.filter_services == () and rules.filter_external == ()


def test_probability_is_go_formatted() -> None:
    assert [probability(n) for n in (3, 2, 4)] == ["0.3333333333", "0.5000000000", "0.2500000000"]


def test_masquerade_all_and_no_cluster_cidr() -> None:
    info = ServiceInfo("10.96.0.10", 80, "tcp")
    masq_all = chains(port_rules(NAME, info, EPS, RuleOptions(masquerade_all=True)))[SVC][0]
    assert masq_all.endswith("--dport 80 -j KUBE-MARK-MASQ") and "! -s" not in masq_all
    plain = chains(port_rules(NAME, info, EPS, RuleOptions()))[SVC]
    assert all("KUBE-MARK-MASQ" not in line for line in plain)


def test_client_ip_affinity_uses_the_recent_module() -> None:
    rules = port_rules(NAME, ServiceInfo("10.96.0.10", 80, "tcp", affinity_seconds=30), EPS[:2], OPTS)
    svc = chains(rules)[SVC]
    assert svc[1] == (
        f'-A {SVC} -m comment --comment "default/web:http" -m recent --name {SEPS[0]} --rcheck '
        f"--seconds 30 --reap -j {SEPS[0]}"
    )
    assert chains(rules)[SEPS[0]][1] == (
        f'-A {SEPS[0]} -m comment --comment "default/web:http" -m recent --name {SEPS[0]} --set '
        "-m tcp -p tcp -j DNAT --to-destination 10.244.1.2:8080"
    )


def test_no_endpoints_rejects_in_the_filter_table() -> None:
    info = ServiceInfo("10.96.0.10", 80, "udp", node_port=30053, external_ips=("192.168.56.200",))
    rules = port_rules(ServicePortName("default", "dns", "", "udp"), info, (), OPTS)
    assert rules.nat_services == () and rules.chains == ()
    assert rules.filter_services == (
        '-A KUBE-SERVICES -m comment --comment "default/dns has no endpoints" -m udp -p udp '
        "-d 10.96.0.10/32 --dport 80 -j REJECT",
    )
    assert rules.filter_external == (
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/dns has no endpoints" -m udp -p udp '
        "-d 192.168.56.200/32 --dport 80 -j REJECT",
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/dns has no endpoints" '
        "-m addrtype --dst-type LOCAL -m udp -p udp --dport 30053 -j REJECT",
    )


def test_node_port_external_ip_and_load_balancer() -> None:
    info = ServiceInfo(
        "10.96.0.10",
        80,
        "tcp",
        node_port=30080,
        external_ips=("192.168.56.200",),
        load_balancer_ips=("192.168.56.201",),
    )
    rules = port_rules(NAME, info, EPS[:1], OPTS)
    fw = "KUBE-FW-" + SVC[len("KUBE-SVC-") :]
    assert rules.nat_nodeports == (
        f'-A KUBE-NODEPORTS -m comment --comment "default/web:http" -m tcp -p tcp --dport 30080 -j {SVC}',
    )
    assert (
        '-A KUBE-SERVICES -m comment --comment "default/web:http external IP" -m tcp -p tcp '
        f"-d 192.168.56.200/32 --dport 80 -j {SVC}"
    ) in rules.nat_services
    assert (
        '-A KUBE-SERVICES -m comment --comment "default/web:http loadbalancer IP" -m tcp -p tcp '
        f"-d 192.168.56.201/32 --dport 80 -j {fw}"
    ) in rules.nat_services
    svc = chains(rules)[SVC]
    assert (
        f'-A {SVC} -m comment --comment "default/web:http" -m tcp -p tcp --dport 30080 -j KUBE-MARK-MASQ'
        in svc
    )
    assert [line.rsplit("-j ", 1)[1] for line in chains(rules)[fw]] == [
        "KUBE-MARK-MASQ",
        SVC,
        "KUBE-MARK-DROP",
    ]


def test_endpoint_comments_can_be_dropped_for_large_clusters() -> None:
    rules = port_rules(NAME, ServiceInfo("10.96.0.10", 80, "tcp"), EPS, OPTS, endpoint_comments=False)
    assert chains(rules)[SEPS[0]][0] == f"-A {SEPS[0]} -s 10.244.1.2/32 -j KUBE-MARK-MASQ"
    assert chains(rules)[SVC][-1] == f"-A {SVC} -j {SEPS[2]}"


def test_static_chains_and_tail() -> None:
    fixed = static_rules(OPTS)
    assert fixed[("nat", "KUBE-POSTROUTING")] == [
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
    ]
    assert fixed[("nat", "KUBE-MARK-MASQ")] == ["-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"]
    assert nodeports_tail(OPTS) == [
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last '
        'rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
    ]
    assert "-d 192.168.56.0/24" in nodeports_tail(RuleOptions(nodeport_addresses=("192.168.56.0/24",)))[0]


def test_full_ruleset_declares_every_chain_and_deletes_stale_ones() -> None:
    rules = port_rules(NAME, ServiceInfo("10.96.0.10", 80, "tcp"), EPS, OPTS)
    text = full_ruleset(
        {NAME: rules},
        OPTS,
        existing_chains={"nat": {"KUBE-SVC-STALE0000000000", SVC, "KUBE-SERVICES", "KUBE-PORTALS-HOST"}},
        missing_jumps=JUMP_RULES[:1],
    ).render()
    lines = text.splitlines()
    assert lines[0] == "*filter" and "*nat" in lines and lines.count("COMMIT") == 2
    for chain in ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", SVC, *SEPS):
        assert f":{chain} - [0:0]" in lines
    assert "-X KUBE-SVC-STALE0000000000" in lines
    assert "-X KUBE-PORTALS-HOST" not in lines  # not ours to delete here
    assert f"-I INPUT 1 {JUMP_RULES[0].spec}" in lines
    nat = lines[lines.index("*nat") :]
    kube_services = [line for line in nat if line.startswith("-A KUBE-SERVICES")]
    assert "KUBE-NODEPORTS" in kube_services[-1]  # the tail stays last


def test_partial_sync_after_an_endpoint_change_touches_only_that_service() -> None:
    info = ServiceInfo("10.96.0.10", 80, "tcp")
    old = port_rules(NAME, info, EPS, OPTS)
    new = port_rules(NAME, info, EPS[:2], OPTS)
    rs = partial_ruleset({NAME: (old, new)})
    assert rs.tables() == ["nat"]
    assert rs.declare["nat"] == [SVC, SEPS[2]]
    assert rs.remove["nat"] == [SEPS[2]]
    assert rs.delete["nat"] == []
    assert all(line.startswith(f"-A {SVC} ") for line in rs.add["nat"])


def test_partial_sync_moves_a_service_between_reject_and_nat() -> None:
    info = ServiceInfo("10.96.0.10", 80, "tcp")
    empty = port_rules(NAME, info, (), OPTS)
    full = port_rules(NAME, info, EPS[:1], OPTS)
    rs = partial_ruleset({NAME: (empty, full)})
    assert rs.delete["filter"] == ["-D" + empty.filter_services[0][2:]]
    assert rs.add["nat"][0] == "-I KUBE-SERVICES 1" + full.nat_services[0][len("-A KUBE-SERVICES") :]
    back = partial_ruleset({NAME: (full, empty)})
    assert back.delete["nat"] == ["-D" + full.nat_services[0][2:]]
    assert sorted(back.remove["nat"]) == sorted([SVC, SEPS[0]])
    text = back.render()
    assert text.index("-D KUBE-SERVICES") < text.index(f"-X {SVC}")


def test_partial_sync_of_a_deleted_service() -> None:
    full = port_rules(NAME, ServiceInfo("10.96.0.10", 80, "tcp"), EPS[:1], OPTS)
    rs = partial_ruleset({NAME: (full, None)})
    assert rs.remove["nat"] == [SVC, SEPS[0]]
    assert partial_ruleset({}).render() == ""
