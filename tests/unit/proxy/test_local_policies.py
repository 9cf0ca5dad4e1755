"""externalTrafficPolicy / internalTrafficPolicy Local: the KUBE-XLB chain (Kubernetes ~1.22,
interfaces.md 4.3/4.5), the KUBE-SVL chain, health-check node ports, and the service values."""

from __future__ import annotations

from services.machinery import codec
from services.proxy.hashing import endpoint_chain, service_chain
from services.proxy.iptables_mode.rules import (
    PortRules,
    RuleOptions,
    full_ruleset,
    partial_ruleset,
    port_rules,
    svl_chain,
    xlb_chain,
)
from services.proxy.service_port import Endpoint, ServiceInfo, ServicePortName, service_ports

NAME = ServicePortName("default", "web", "http", "tcp")
SPN = "default/web:http"
SVC = service_chain(SPN, "tcp")
XLB = "KUBE-XLB-" + SVC[len("KUBE-SVC-") :]
SVL = "KUBE-SVL-" + SVC[len("KUBE-SVC-") :]
FW = "KUBE-FW-" + SVC[len("KUBE-SVC-") :]
HERE, THERE = Endpoint("10.244.1.2", 8080, "node-1"), Endpoint("10.244.2.2", 8080, "node-2")
LOCAL2 = Endpoint("10.244.1.3", 8080, "node-1")
OPTS = RuleOptions(cluster_cidr="10.244.0.0/16", node_name="node-1")


def sep(ep: Endpoint) -> str:
    return endpoint_chain(SPN, "tcp", str(ep))


def local_lb(**overrides: object) -> ServiceInfo:
    fields: dict = {
        "cluster_ip": "10.96.0.10",
        "port": 80,
        "protocol": "tcp",
        "node_port": 30080,
        "external_ips": ("192.168.56.200",),
        "load_balancer_ips": ("192.168.56.201",),
        "external_local": True,
        "health_check_node_port": 30099,
    }
    fields.update(overrides)
    return ServiceInfo(**fields)  # type: ignore[arg-type]


def chains(rules: PortRules) -> dict[str, tuple[str, ...]]:
    return dict(rules.chains)


def test_external_traffic_goes_to_the_xlb_chain_with_the_source_kept() -> None:
    rules = port_rules(NAME, local_lb(), (HERE, THERE, LOCAL2), OPTS)
    assert xlb_chain(NAME) == XLB
    # NodePort: loopback clients are masqueraded (martian source), nobody else is.
    assert rules.nat_nodeports == (
        f'-A KUBE-NODEPORTS -m comment --comment "{SPN}" -m tcp -p tcp --dport 30080 -s 127.0.0.0/8 '
        "-j KUBE-MARK-MASQ",
        f'-A KUBE-NODEPORTS -m comment --comment "{SPN}" -m tcp -p tcp --dport 30080 -j {XLB}',
    )
    assert (
        f'-A KUBE-SERVICES -m comment --comment "{SPN} external IP" -m tcp -p tcp -d 192.168.56.200/32 '
        f"--dport 80 -j {XLB}"
    ) in rules.nat_services
    assert [line.rsplit("-j ", 1)[1] for line in chains(rules)[FW]] == [XLB, "KUBE-MARK-DROP"]
    # the service chain masquerades only ClusterIP traffic from outside the pod CIDR
    assert [line for line in chains(rules)[SVC] if "KUBE-MARK-MASQ" in line] == [
        f'-A {SVC} -m comment --comment "{SPN} cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 '
        "! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"
    ]
    assert chains(rules)[XLB] == (
        f'-A {XLB} -m comment --comment "Redirect pods trying to reach external loadbalancer VIP to clusterIP" '
        f"-s 10.244.0.0/16 -j {SVC}",
        f'-A {XLB} -m comment --comment "masquerade LOCAL traffic for {SPN} LB IP" -m addrtype '
        "--src-type LOCAL -j KUBE-MARK-MASQ",
        f'-A {XLB} -m comment --comment "route LOCAL traffic for {SPN} LB IP to service chain" -m addrtype '
        f"--src-type LOCAL -j {SVC}",
        f'-A {XLB} -m comment --comment "Balancing rule 0 for {SPN}" -m statistic --mode random '
        f"--probability 0.5000000000 -j {sep(HERE)}",
        f'-A {XLB} -m comment --comment "Balancing rule 1 for {SPN}" -j {sep(LOCAL2)}',
    )
    # the health check port is accepted in filter KUBE-NODEPORTS
    assert rules.filter_nodeports == (
        f'-A KUBE-NODEPORTS -m comment --comment "{SPN} health check node port" -m tcp -p tcp '
        "--dport 30099 -j ACCEPT",
    )


def test_no_local_endpoint_drops_external_traffic_but_keeps_cluster_traffic() -> None:
    rules = port_rules(NAME, local_lb(), (THERE,), OPTS)
    assert chains(rules)[XLB][-1] == (
        f'-A {XLB} -m comment --comment "{SPN} has no local endpoints" -j KUBE-MARK-DROP'
    )
    assert chains(rules)[SVC][-1] == f'-A {SVC} -m comment --comment "{SPN}" -j {sep(THERE)}'
    assert rules.filter_services == ()


def test_local_affinity_checks_only_local_endpoints() -> None:
    rules = port_rules(NAME, local_lb(affinity_seconds=60), (HERE, THERE), OPTS)
    recent = [line for line in chains(rules)[XLB] if "--rcheck" in line]
    assert recent == [
        f'-A {XLB} -m comment --comment "{SPN}" -m recent --name {sep(HERE)} --rcheck --seconds 60 '
        f"--reap -j {sep(HERE)}"
    ]


def test_without_a_pod_cidr_the_pod_redirect_is_left_out() -> None:
    rules = port_rules(NAME, local_lb(), (HERE,), RuleOptions(node_name="node-1"))
    assert not any("Redirect pods" in line for line in chains(rules)[XLB])


def test_health_check_port_is_accepted_even_without_endpoints() -> None:
    rules = port_rules(NAME, local_lb(), (), OPTS)
    assert len(rules.filter_nodeports) == 1 and rules.chains == ()
    assert any("has no endpoints" in line for line in rules.filter_external)


def test_internal_traffic_policy_local_uses_only_local_endpoints() -> None:
    info = ServiceInfo("10.96.0.10", 80, "tcp", internal_local=True)
    rules = port_rules(NAME, info, (HERE, THERE), OPTS)
    assert svl_chain(NAME) == SVL
    assert rules.nat_services[0].endswith(f"-j {SVL}")
    assert SVC not in chains(rules)  # nothing uses the all-endpoints chain
    assert set(chains(rules)) == {SVL, sep(HERE)}
    assert chains(rules)[SVL][-1] == f'-A {SVL} -m comment --comment "{SPN}" -j {sep(HERE)}'
    dropped = port_rules(NAME, info, (THERE,), OPTS)
    assert dropped.nat_services == () and dropped.chains == ()
    assert dropped.filter_services == (
        f'-A KUBE-SERVICES -m comment --comment "{SPN} has no local endpoints" -m tcp -p tcp '
        "-d 10.96.0.10/32 --dport 80 -j DROP",
    )


def test_internal_local_with_external_cluster_keeps_the_service_chain_for_outsiders() -> None:
    info = ServiceInfo("10.96.0.10", 80, "tcp", node_port=30080, internal_local=True)
    rules = port_rules(NAME, info, (HERE, THERE), OPTS)
    assert rules.nat_nodeports[0].endswith(f"-j {SVC}")
    assert {SVC, SVL, sep(HERE), sep(THERE)} == set(chains(rules))


def test_partial_sync_moves_a_local_endpoint_in_and_out() -> None:
    before = port_rules(NAME, local_lb(), (THERE,), OPTS)
    after = port_rules(NAME, local_lb(), (THERE, HERE), OPTS)
    text = partial_ruleset({NAME: (before, after)}).render()
    assert f":{XLB} - [0:0]" in text and f":{sep(HERE)} - [0:0]" in text
    assert "*filter" not in text  # the health check rule did not change
    gone = partial_ruleset({NAME: (after, None)}).render()
    assert "-D KUBE-NODEPORTS" in gone.split("*nat")[0]  # filter: the health check rule goes
    assert f"-X {XLB}" in gone


def test_full_ruleset_for_nf_tables_lists_first_and_declares_builtins_with_their_policy() -> None:
    rules = port_rules(NAME, local_lb(), (HERE,), OPTS)
    ruleset = full_ruleset({NAME: rules}, OPTS, builtin_policies={("filter", "INPUT"): "DROP"})
    lines = ruleset.render(list_first=True).splitlines()
    assert lines[:3] == ["*filter", "-S", ":INPUT DROP [0:0]"]
    assert lines[lines.index("*nat") + 1] == "-S"
    assert "-S" not in ruleset.render().splitlines()
    assert (
        f'-A KUBE-NODEPORTS -m comment --comment "{SPN} health check node port" -m tcp -p tcp --dport 30099 -j ACCEPT'
        in lines
    )


def test_service_values_from_the_api_object() -> None:
    svc = codec.from_yaml("""
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  healthCheckNodePort: 30099
  ports: [{name: http, port: 80, nodePort: 30080}]
""")
    [info] = service_ports(svc).values()
    assert (info.external_local, info.internal_local, info.health_check_node_port) == (True, True, 30099)
    svc.spec.type = "ClusterIP"
    svc.spec.external_traffic_policy = ""
    [plain] = service_ports(svc).values()
    assert (plain.external_local, plain.health_check_node_port) == (False, 0)
