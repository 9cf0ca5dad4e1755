"""Pure rule generation for iptables mode: service ports and endpoints in, iptables-restore
text out. No I/O, so the shapes are unit-tested against interfaces.md section 4 without root.

Every service port owns a `PortRules` value: its lines in the shared chains (nat KUBE-SERVICES
and KUBE-NODEPORTS, filter KUBE-SERVICES and KUBE-EXTERNAL-SERVICES) and the nat chains only it
uses (KUBE-SVC-, KUBE-SEP-, KUBE-FW-). A full sync writes everything; a partial sync compares a
port's old and new `PortRules` and writes only the difference: private chains are redeclared
(which flushes them under --noflush) or deleted, and shared-chain lines are deleted and
inserted one by one, so the restore input is O(changed) however many services exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.proxy.hashing import endpoint_chain, service_chain
from services.proxy.service_port import Endpoint, ServiceInfo, ServicePortName

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_MARK_DROP = "KUBE-MARK-DROP"
DROP_MARK = "0x8000"

FILTER_CHAINS = (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS)
NAT_CHAINS = (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ, KUBE_MARK_DROP)
# Prefixes of the per-service chains this mode creates (stale ones are deleted on full syncs).
PRIVATE_PREFIXES = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-FW-", "KUBE-XLB-")
# Kubernetes' largeClusterEndpointsThreshold: beyond it per-endpoint comments are dropped to
# keep the ruleset (and every restore) smaller.
LARGE_CLUSTER_ENDPOINTS = 1000
NODEPORTS_TAIL_COMMENT = '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"'


@dataclass(frozen=True)
class JumpRule:
    """A jump from a built-in chain, written the way iptables-save prints it, so its presence
    can be checked against a save without running `iptables -C`."""

    table: str
    chain: str
    spec: str

    @property
    def line(self) -> str:
        return f"-A {self.chain} {self.spec}"


JUMP_RULES = (
    JumpRule(
        "filter",
        "INPUT",
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" '
        "-j KUBE-EXTERNAL-SERVICES",
    ),
    JumpRule(
        "filter",
        "FORWARD",
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" '
        "-j KUBE-EXTERNAL-SERVICES",
    ),
    JumpRule(
        "filter", "INPUT", '-m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS'
    ),
    JumpRule(
        "filter",
        "FORWARD",
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    ),
    JumpRule(
        "filter",
        "OUTPUT",
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    ),
    JumpRule("filter", "FORWARD", '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD'),
    JumpRule("nat", "OUTPUT", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    JumpRule("nat", "PREROUTING", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    JumpRule("nat", "POSTROUTING", '-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'),
)


@dataclass(frozen=True)
class RuleOptions:
    masquerade_mark: str = "0x4000"
    cluster_cidr: str = ""
    masquerade_all: bool = False
    nodeport_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortRules:
    """Everything one service port contributes to the ruleset."""

    nat_services: tuple[str, ...] = ()
    nat_nodeports: tuple[str, ...] = ()
    filter_services: tuple[str, ...] = ()
    filter_external: tuple[str, ...] = ()
    # nat chains private to this port, in dependency order (SVC before its SEPs)
    chains: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def shared(self) -> dict[tuple[str, str], tuple[str, ...]]:
        return {
            ("nat", KUBE_SERVICES): self.nat_services,
            ("nat", KUBE_NODEPORTS): self.nat_nodeports,
            ("filter", KUBE_SERVICES): self.filter_services,
            ("filter", KUBE_EXTERNAL_SERVICES): self.filter_external,
        }

    def line_count(self) -> tuple[int, int]:
        """(nat, filter) rules."""
        nat = len(self.nat_services) + len(self.nat_nodeports) + sum(len(r) for _, r in self.chains)
        return nat, len(self.filter_services) + len(self.filter_external)


def _comment(text: str) -> str:
    return f'-m comment --comment "{text}"'


def _cidr(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def probability(remaining: int) -> str:
    """Go's fmt.Sprintf("%0.10f", 1.0/n)."""
    return f"{1.0 / remaining:0.10f}"


def fw_chain(name: ServicePortName) -> str:
    return "KUBE-FW-" + service_chain(str(name), name.protocol)[len("KUBE-SVC-") :]


def port_rules(
    name: ServicePortName,
    info: ServiceInfo,
    endpoints: Iterable[Endpoint],
    options: RuleOptions,
    *,
    endpoint_comments: bool = True,
) -> PortRules:
    """The rules of one service port (Kubernetes ~1.22 syncProxyRules, Cluster traffic policy)."""
    spn, proto = str(name), info.protocol
    eps = list(endpoints)
    svc_chain = service_chain(spn, proto)
    match = f"-m {proto} -p {proto}"
    cluster_args = f"{_comment(spn + ' cluster IP')} {match} -d {_cidr(info.cluster_ip)} --dport {info.port}"

    if not eps:
        reject = _comment(spn + " has no endpoints")
        filter_services = (
            f"-A {KUBE_SERVICES} {reject} {match} -d {_cidr(info.cluster_ip)} --dport {info.port} -j REJECT",
        )
        external = [
            f"-A {KUBE_EXTERNAL_SERVICES} {reject} {match} -d {_cidr(ip)} --dport {info.port} -j REJECT"
            for ip in (*info.external_ips, *info.load_balancer_ips)
        ]
        if info.node_port:
            external.append(
                f"-A {KUBE_EXTERNAL_SERVICES} {reject} -m addrtype --dst-type LOCAL {match} "
                f"--dport {info.node_port} -j REJECT"
            )
        return PortRules(filter_services=filter_services, filter_external=tuple(external))

    def masq(args: str, *, local_detector: bool = True) -> str:
        if options.masquerade_all or not (local_detector and options.cluster_cidr):
            return f"-A {svc_chain} {args} -j {KUBE_MARK_MASQ}"
        return f"-A {svc_chain} {args} ! -s {options.cluster_cidr} -j {KUBE_MARK_MASQ}"

    svc_lines: list[str] = []
    nat_services: list[str] = []
    nat_nodeports: list[str] = []
    chains: list[tuple[str, tuple[str, ...]]] = []

    if options.masquerade_all or options.cluster_cidr:
        svc_lines.append(masq(cluster_args))
    nat_services.append(f"-A {KUBE_SERVICES} {cluster_args} -j {svc_chain}")

    for ip in info.external_ips:
        args = f"{_comment(spn + ' external IP')} {match} -d {_cidr(ip)} --dport {info.port}"
        svc_lines.append(masq(args))
        nat_services.append(f"-A {KUBE_SERVICES} {args} -j {svc_chain}")

    if info.load_balancer_ips:
        fw = fw_chain(name)
        lb_comment = _comment(spn + " loadbalancer IP")
        for ip in info.load_balancer_ips:
            nat_services.append(
                f"-A {KUBE_SERVICES} {lb_comment} {match} -d {_cidr(ip)} --dport {info.port} -j {fw}"
            )
        chains.append(
            (
                fw,
                (
                    f"-A {fw} {lb_comment} -j {KUBE_MARK_MASQ}",
                    f"-A {fw} {lb_comment} -j {svc_chain}",
                    f"-A {fw} {lb_comment} -j {KUBE_MARK_DROP}",
                ),
            )
        )

    if info.node_port:
        args = f"{_comment(spn)} {match} --dport {info.node_port}"
        svc_lines.append(masq(args, local_detector=False))
        nat_nodeports.append(f"-A {KUBE_NODEPORTS} {args} -j {svc_chain}")

    ep_comment = f"{_comment(spn)} " if endpoint_comments else ""
    sep_names = [endpoint_chain(spn, proto, str(ep)) for ep in eps]
    if info.client_ip_affinity:
        for sep in sep_names:
            svc_lines.append(
                f"-A {svc_chain} {ep_comment}-m recent --name {sep} --rcheck "
                f"--seconds {info.affinity_seconds} --reap -j {sep}"
            )
    for i, sep in enumerate(sep_names):
        remaining = len(sep_names) - i
        stat = f"-m statistic --mode random --probability {probability(remaining)} " if remaining > 1 else ""
        svc_lines.append(f"-A {svc_chain} {ep_comment}{stat}-j {sep}")

    chains.insert(0, (svc_chain, tuple(svc_lines)))
    for ep, sep in zip(eps, sep_names, strict=True):
        recent = f"-m recent --name {sep} --set " if info.client_ip_affinity else ""
        chains.append(
            (
                sep,
                (
                    f"-A {sep} {ep_comment}-s {_cidr(ep.ip)} -j {KUBE_MARK_MASQ}",
                    f"-A {sep} {ep_comment}{recent}{match} -j DNAT --to-destination {ep}",
                ),
            )
        )
    return PortRules(
        nat_services=tuple(nat_services), nat_nodeports=tuple(nat_nodeports), chains=tuple(chains)
    )


def static_rules(options: RuleOptions) -> dict[tuple[str, str], list[str]]:
    """The fixed chains' rules, except nat KUBE-SERVICES' tail (see `nodeports_tail`)."""
    mark = options.masquerade_mark
    return {
        ("filter", KUBE_FORWARD): [
            f"-A {KUBE_FORWARD} -m conntrack --ctstate INVALID -j DROP",
            f"-A {KUBE_FORWARD} {_comment('kubernetes forwarding rules')} "
            f"-m mark --mark {mark}/{mark} -j ACCEPT",
            f"-A {KUBE_FORWARD} {_comment('kubernetes forwarding conntrack rule')} "
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ],
        ("nat", KUBE_POSTROUTING): [
            f"-A {KUBE_POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN",
            f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {mark}",
            f"-A {KUBE_POSTROUTING} {_comment('kubernetes service traffic requiring SNAT')} "
            "-j MASQUERADE --random-fully",
        ],
        ("nat", KUBE_MARK_MASQ): [f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {mark}"],
        ("nat", KUBE_MARK_DROP): [f"-A {KUBE_MARK_DROP} -j MARK --or-mark {DROP_MARK}"],
    }


def nodeports_tail(options: RuleOptions) -> list[str]:
    """Last rules of nat KUBE-SERVICES: local destinations go on to KUBE-NODEPORTS."""
    if not options.nodeport_addresses:
        return [
            f"-A {KUBE_SERVICES} -m comment --comment {NODEPORTS_TAIL_COMMENT} "
            f"-m addrtype --dst-type LOCAL -j {KUBE_NODEPORTS}"
        ]
    return [
        f"-A {KUBE_SERVICES} -m comment --comment {NODEPORTS_TAIL_COMMENT} -d {cidr} "
        f"-m addrtype --dst-type LOCAL -j {KUBE_NODEPORTS}"
        for cidr in options.nodeport_addresses
    ]


@dataclass
class Ruleset:
    """A restore buffer under construction, per table: chain declarations, deletions of
    single rules, additions, and chain removals, in the order iptables-restore needs them."""

    declare: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})
    delete: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})
    add: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})
    remove: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})

    def render(self) -> str:
        out: list[str] = []
        for table in ("filter", "nat"):
            if not any(part[table] for part in (self.declare, self.delete, self.add, self.remove)):
                continue
            out.append(f"*{table}")
            out.extend(f":{chain} - [0:0]" for chain in self.declare[table])
            out.extend(self.delete[table])
            out.extend(self.add[table])
            out.extend(f"-X {chain}" for chain in self.remove[table])
            out.append("COMMIT")
        return "\n".join(out) + "\n" if out else ""

    def tables(self) -> list[str]:
        return [
            t for t in ("filter", "nat") if self.declare[t] or self.delete[t] or self.add[t] or self.remove[t]
        ]


def full_ruleset(
    ports: Mapping[ServicePortName, PortRules],
    options: RuleOptions,
    *,
    existing_chains: Mapping[str, set[str]] | None = None,
    missing_jumps: Iterable[JumpRule] = (),
) -> Ruleset:
    """Every owned chain rewritten; stale per-service chains found in `existing_chains`
    (table -> chain names from a save) deleted; missing jumps inserted at the top."""
    rs = Ruleset()
    rs.declare["filter"].extend(FILTER_CHAINS)
    rs.declare["nat"].extend(NAT_CHAINS)
    for jump in missing_jumps:
        rs.add[jump.table].append(f"-I {jump.chain} 1 {jump.spec}")
    fixed = static_rules(options)
    for (table, _chain), lines in fixed.items():
        rs.add[table].extend(lines)
    nat_services: list[str] = []
    nat_nodeports: list[str] = []
    active: set[str] = set()
    for rules in ports.values():
        nat_services.extend(rules.nat_services)
        nat_nodeports.extend(rules.nat_nodeports)
        rs.add["filter"].extend(rules.filter_services)
        rs.add["filter"].extend(rules.filter_external)
        for chain, chain_lines in rules.chains:
            active.add(chain)
            rs.declare["nat"].append(chain)
            rs.add["nat"].extend(chain_lines)
    rs.add["nat"].extend(nat_services)
    rs.add["nat"].extend(nodeports_tail(options))
    rs.add["nat"].extend(nat_nodeports)
    for chain in sorted((existing_chains or {}).get("nat", set())):
        if chain.startswith(PRIVATE_PREFIXES) and chain not in active:
            rs.declare["nat"].append(chain)
            rs.remove["nat"].append(chain)
    return rs


def _as_insert(line: str) -> str:
    """`-A CHAIN spec` -> `-I CHAIN 1 spec`: new shared-chain lines go on top, so nat
    KUBE-SERVICES' nodeports tail stays last."""
    _, chain, spec = line.split(" ", 2)
    return f"-I {chain} 1 {spec}"


def _as_delete(line: str) -> str:
    return "-D" + line[2:]


def partial_ruleset(changes: Mapping[ServicePortName, tuple[PortRules | None, PortRules | None]]) -> Ruleset:
    """Only the difference between each changed port's old and new rules."""
    rs = Ruleset()
    for old, new in changes.values():
        before = old or PortRules()
        after = new or PortRules()
        old_shared, new_shared = before.shared(), after.shared()
        for key, new_lines in new_shared.items():
            table = key[0]
            old_lines = old_shared[key]
            if old_lines == new_lines:
                continue
            kept = set(new_lines)
            rs.delete[table].extend(_as_delete(line) for line in old_lines if line not in kept)
            previous = set(old_lines)
            rs.add[table].extend(_as_insert(line) for line in reversed(new_lines) if line not in previous)
        old_chains, new_chains = dict(before.chains), dict(after.chains)
        for chain, lines in after.chains:
            if old_chains.get(chain) != lines:
                rs.declare["nat"].append(chain)
                rs.add["nat"].extend(lines)
        for chain in old_chains:
            if chain not in new_chains:
                rs.declare["nat"].append(chain)
                rs.remove["nat"].append(chain)
    return rs
