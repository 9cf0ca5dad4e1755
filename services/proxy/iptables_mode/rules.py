"""Pure rule generation for iptables mode: service ports and endpoints in, iptables-restore
text out. No I/O, so the shapes are unit-tested against interfaces.md section 4 without root.

Every service port owns a `PortRules` value: its lines in the shared chains (nat KUBE-SERVICES
and KUBE-NODEPORTS, filter KUBE-SERVICES, KUBE-EXTERNAL-SERVICES and KUBE-NODEPORTS) and the nat
chains only it uses (KUBE-SVC-, KUBE-SEP-, KUBE-FW-, KUBE-XLB-, KUBE-SVL-). A full sync writes
everything; a partial sync compares a port's old and new `PortRules` and writes only the
difference: private chains are redeclared (which flushes them under --noflush) or deleted, and
shared-chain lines are deleted and inserted one by one, so the restore input is O(changed)
however many services exist.
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
PRIVATE_PREFIXES = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-FW-", "KUBE-XLB-", "KUBE-SVL-")
LOOPBACK = "127.0.0.0/8"
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
    # This node: endpoints whose nodeName it is are local (the Local traffic policies).
    node_name: str = ""


@dataclass(frozen=True)
class PortRules:
    """Everything one service port contributes to the ruleset."""

    nat_services: tuple[str, ...] = ()
    nat_nodeports: tuple[str, ...] = ()
    filter_services: tuple[str, ...] = ()
    filter_external: tuple[str, ...] = ()
    # health-check node port ACCEPT (filter KUBE-NODEPORTS)
    filter_nodeports: tuple[str, ...] = ()
    # nat chains private to this port, in dependency order (SVC before its SEPs)
    chains: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def shared(self) -> dict[tuple[str, str], tuple[str, ...]]:
        return {
            ("nat", KUBE_SERVICES): self.nat_services,
            ("nat", KUBE_NODEPORTS): self.nat_nodeports,
            ("filter", KUBE_SERVICES): self.filter_services,
            ("filter", KUBE_EXTERNAL_SERVICES): self.filter_external,
            ("filter", KUBE_NODEPORTS): self.filter_nodeports,
        }

    def line_count(self) -> tuple[int, int]:
        """(nat, filter) rules."""
        nat = len(self.nat_services) + len(self.nat_nodeports) + sum(len(r) for _, r in self.chains)
        return nat, len(self.filter_services) + len(self.filter_external) + len(self.filter_nodeports)


def _comment(text: str) -> str:
    return f'-m comment --comment "{text}"'


def _cidr(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def probability(remaining: int) -> str:
    """Go's fmt.Sprintf("%0.10f", 1.0/n)."""
    return f"{1.0 / remaining:0.10f}"


def _chain(prefix: str, name: ServicePortName) -> str:
    """KUBE-FW-, KUBE-XLB-, KUBE-SVL-: the service chain's hash under another prefix."""
    return prefix + service_chain(str(name), name.protocol)[len("KUBE-SVC-") :]


def fw_chain(name: ServicePortName) -> str:
    return _chain("KUBE-FW-", name)


def xlb_chain(name: ServicePortName) -> str:
    return _chain("KUBE-XLB-", name)


def svl_chain(name: ServicePortName) -> str:
    return _chain("KUBE-SVL-", name)


def _affinity(chain: str, seps: list[str], info: ServiceInfo, comment: str) -> list[str]:
    """ClientIP affinity: a client seen recently goes back to its endpoint."""
    if not info.client_ip_affinity:
        return []
    return [
        f"-A {chain} {comment}-m recent --name {sep} --rcheck --seconds {info.affinity_seconds} "
        f"--reap -j {sep}"
        for sep in seps
    ]


def _spread(chain: str, seps: list[str], comments: list[str]) -> list[str]:
    """One rule per endpoint chain, `1/(n-i)` each, the last one unconditional: uniform."""
    lines = []
    for i, (sep, comment) in enumerate(zip(seps, comments, strict=True)):
        remaining = len(seps) - i
        stat = f"-m statistic --mode random --probability {probability(remaining)} " if remaining > 1 else ""
        lines.append(f"-A {chain} {comment}{stat}-j {sep}")
    return lines


def _balance(chain: str, seps: list[str], info: ServiceInfo, comment: str) -> list[str]:
    return _affinity(chain, seps, info, comment) + _spread(chain, seps, [comment] * len(seps))


def port_rules(
    name: ServicePortName,
    info: ServiceInfo,
    endpoints: Iterable[Endpoint],
    options: RuleOptions,
    *,
    endpoint_comments: bool = True,
) -> PortRules:
    """The rules of one service port (Kubernetes ~1.22 syncProxyRules, with its KUBE-XLB chain
    for externalTrafficPolicy Local; internalTrafficPolicy Local uses a KUBE-SVL chain of the
    local endpoints, as later Kubernetes does)."""
    spn, proto = str(name), info.protocol
    eps = list(endpoints)
    match = f"-m {proto} -p {proto}"
    cluster_dst = f"-d {_cidr(info.cluster_ip)} --dport {info.port}"
    cluster_args = f"{_comment(spn + ' cluster IP')} {match} {cluster_dst}"
    health = (
        (
            f"-A {KUBE_NODEPORTS} {_comment(spn + ' health check node port')} -m tcp -p tcp "
            f"--dport {info.health_check_node_port} -j ACCEPT",
        )
        if info.health_check_node_port
        else ()
    )

    if not eps:
        reject = _comment(spn + " has no endpoints")
        rejects = (f"-A {KUBE_SERVICES} {reject} {match} {cluster_dst} -j REJECT",)
        external = [
            f"-A {KUBE_EXTERNAL_SERVICES} {reject} {match} -d {_cidr(ip)} --dport {info.port} -j REJECT"
            for ip in (*info.external_ips, *info.load_balancer_ips)
        ]
        if info.node_port:
            external.append(
                f"-A {KUBE_EXTERNAL_SERVICES} {reject} -m addrtype --dst-type LOCAL {match} "
                f"--dport {info.node_port} -j REJECT"
            )
        return PortRules(filter_services=rejects, filter_external=tuple(external), filter_nodeports=health)

    svc_chain = service_chain(spn, proto)
    local = [ep for ep in eps if options.node_name and ep.node_name == options.node_name]
    sep_names = [endpoint_chain(spn, proto, str(ep)) for ep in eps]
    local_seps = [sep for ep, sep in zip(eps, sep_names, strict=True) if ep in local]
    ep_comment = f"{_comment(spn)} " if endpoint_comments else ""
    external_local = info.external_local

    def masq(chain: str, args: str, *, local_detector: bool = True) -> str:
        if options.masquerade_all or not (local_detector and options.cluster_cidr):
            return f"-A {chain} {args} -j {KUBE_MARK_MASQ}"
        return f"-A {chain} {args} ! -s {options.cluster_cidr} -j {KUBE_MARK_MASQ}"

    svc_lines: list[str] = []
    nat_services: list[str] = []
    nat_nodeports: list[str] = []
    filter_services: list[str] = []
    chains: list[tuple[str, tuple[str, ...]]] = []

    # ClusterIP: every endpoint, or (internalTrafficPolicy Local) this node's only.
    if not info.internal_local:
        if options.masquerade_all or options.cluster_cidr:
            svc_lines.append(masq(svc_chain, cluster_args))
        nat_services.append(f"-A {KUBE_SERVICES} {cluster_args} -j {svc_chain}")
    elif local_seps:
        svl = svl_chain(name)
        svl_lines = [masq(svl, cluster_args)] if options.masquerade_all or options.cluster_cidr else []
        svl_lines += _balance(svl, local_seps, info, ep_comment)
        chains.append((svl, tuple(svl_lines)))
        nat_services.append(f"-A {KUBE_SERVICES} {cluster_args} -j {svl}")
    else:
        no_local = _comment(spn + " has no local endpoints")
        filter_services.append(f"-A {KUBE_SERVICES} {no_local} {match} {cluster_dst} -j DROP")

    # Traffic from outside: the service chain (Cluster) or KUBE-XLB (Local, source kept).
    external_target = xlb_chain(name) if external_local else svc_chain
    for ip in info.external_ips:
        args = f"{_comment(spn + ' external IP')} {match} -d {_cidr(ip)} --dport {info.port}"
        if not external_local:
            svc_lines.append(masq(svc_chain, args))
        nat_services.append(f"-A {KUBE_SERVICES} {args} -j {external_target}")

    if info.load_balancer_ips:
        fw = fw_chain(name)
        lb_comment = _comment(spn + " loadbalancer IP")
        for ip in info.load_balancer_ips:
            nat_services.append(
                f"-A {KUBE_SERVICES} {lb_comment} {match} -d {_cidr(ip)} --dport {info.port} -j {fw}"
            )
        fw_lines = [] if external_local else [f"-A {fw} {lb_comment} -j {KUBE_MARK_MASQ}"]
        fw_lines += [
            f"-A {fw} {lb_comment} -j {external_target}",
            f"-A {fw} {lb_comment} -j {KUBE_MARK_DROP}",
        ]
        chains.append((fw, tuple(fw_lines)))

    if info.node_port:
        args = f"{_comment(spn)} {match} --dport {info.node_port}"
        if external_local:
            # Fix localhost martian source error (connections to 127.0.0.1:nodePort).
            nat_nodeports.append(f"-A {KUBE_NODEPORTS} {args} -s {LOOPBACK} -j {KUBE_MARK_MASQ}")
        else:
            svc_lines.append(masq(svc_chain, args, local_detector=False))
        nat_nodeports.append(f"-A {KUBE_NODEPORTS} {args} -j {external_target}")

    if external_local and info.has_external:
        xlb = external_target
        xlb_lines: list[str] = []
        if options.cluster_cidr:
            xlb_lines.append(
                f"-A {xlb} "
                f"{_comment('Redirect pods trying to reach external loadbalancer VIP to clusterIP')} "
                f"-s {options.cluster_cidr} -j {svc_chain}"
            )
        xlb_lines += [
            f"-A {xlb} {_comment(f'masquerade LOCAL traffic for {spn} LB IP')} "
            f"-m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}",
            f"-A {xlb} {_comment(f'route LOCAL traffic for {spn} LB IP to service chain')} "
            f"-m addrtype --src-type LOCAL -j {svc_chain}",
        ]
        if local_seps:
            xlb_lines += _affinity(xlb, local_seps, info, f"{_comment(spn)} ")
            numbered = [f"{_comment(f'Balancing rule {i} for {spn}')} " for i in range(len(local_seps))]
            xlb_lines += _spread(xlb, local_seps, numbered)
        else:
            xlb_lines.append(f"-A {xlb} {_comment(f'{spn} has no local endpoints')} -j {KUBE_MARK_DROP}")
        chains.append((xlb, tuple(xlb_lines)))

    uses_svc = not info.internal_local or info.has_external
    if uses_svc:
        svc_lines += _balance(svc_chain, sep_names, info, ep_comment)
        chains.insert(0, (svc_chain, tuple(svc_lines)))
    for ep, sep in zip(eps, sep_names, strict=True):
        if not uses_svc and sep not in local_seps:
            continue
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
        nat_services=tuple(nat_services),
        nat_nodeports=tuple(nat_nodeports),
        filter_services=tuple(filter_services),
        filter_nodeports=health,
        chains=tuple(chains),
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

    # built-in chain declarations with their policy (":INPUT ACCEPT [0:0]")
    builtins: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})
    declare: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})
    delete: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})
    add: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})
    remove: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})

    def render(self, *, list_first: bool = False) -> str:
        """The restore input; `list_first` opens each table with a `-S` (see
        Backend.list_before_full_restore)."""
        out: list[str] = []
        for table in ("filter", "nat"):
            if not any(part[table] for part in (self.declare, self.delete, self.add, self.remove)):
                continue
            out.append(f"*{table}")
            if list_first:
                out.append("-S")
            out.extend(self.builtins[table])
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
    builtin_policies: Mapping[tuple[str, str], str] | None = None,
) -> Ruleset:
    """Every owned chain rewritten; stale per-service chains found in `existing_chains`
    (table -> chain names from a save) deleted; missing jumps inserted at the top.

    `builtin_policies` ((table, chain) -> policy as saved) declares the built-in chains the
    jumps go to, with the policy they have: under --noflush that flushes nothing, and it creates
    them where nf_tables has not yet (its restore cannot insert into a chain it lacks once the
    batch has fetched every chain, see Backend.list_before_full_restore)."""
    rs = Ruleset()
    rs.declare["filter"].extend(FILTER_CHAINS)
    rs.declare["nat"].extend(NAT_CHAINS)
    for (table, chain), policy in sorted((builtin_policies or {}).items()):
        rs.builtins[table].append(f":{chain} {policy} [0:0]")
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
        rs.add["filter"].extend(rules.filter_nodeports)
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
