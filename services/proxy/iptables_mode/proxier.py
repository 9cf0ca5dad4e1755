"""iptables mode: program the node from the service and endpoint maps with one
iptables-restore --noflush per sync.

A full sync (at start, every syncPeriod, after any failure) saves the tables to learn which
chains exist and which jumps from built-in chains are missing, then rewrites every owned chain
and deletes stale KUBE-SVC/SEP/FW chains. A partial sync writes only what changed for the
changed service ports (rules.partial_ruleset) with no save at all; if it fails (someone edited
the tables under us) the next sync is a full one.
"""

from __future__ import annotations

from services.proxy import conntrack
from services.proxy.cleanup import cleanup_other_mode
from services.proxy.iptables_backend import Backend, kube_chains
from services.proxy.iptables_mode.rules import (
    JUMP_RULES,
    LARGE_CLUSTER_ENDPOINTS,
    PortRules,
    RuleOptions,
    full_ruleset,
    nodeports_tail,
    partial_ruleset,
    port_rules,
    static_rules,
)
from services.proxy.local_ports import LocalPort, LocalPorts
from services.proxy.mode import SyncResult
from services.proxy.netns import NodeNamespace
from services.proxy.service_port import Endpoint, EndpointsMap, ServiceInfo, ServicePortName, ServicesMap


class IptablesProxier:
    mode = "iptables"

    def __init__(self, backend: Backend, netns: NodeNamespace, options: RuleOptions) -> None:
        self.backend = backend
        self.netns = netns
        self.options = options
        self.applied: dict[ServicePortName, PortRules] = {}
        self.inputs: dict[ServicePortName, tuple[ServiceInfo, tuple[Endpoint, ...]]] = {}
        self.endpoint_comments = True
        self.local_ports = LocalPorts(netns)
        self.last_restore_bytes = 0
        # what the last syncs programmed, to find UDP flows a change made stale
        self.endpoints_seen: EndpointsMap = {}
        self.services_seen: ServicesMap = {}

    async def start(self) -> None:
        await self.netns.run(cleanup_other_mode, self.mode)
        await self.netns.run(_write_sysctl, "net/ipv4/conf/all/route_localnet", "1")

    async def stop(self) -> None:
        self.local_ports.close()

    def _rules_for(
        self, name: ServicePortName, services: ServicesMap, endpoints: EndpointsMap
    ) -> PortRules | None:
        """The port's rules; reused when its service and endpoints are what they were, so a
        periodic full sync of an unchanged cluster generates nothing."""
        info = services.get(name)
        if info is None:
            return None
        eps = endpoints.get(name, ())
        previous = self.applied.get(name)
        if previous is not None and self.inputs.get(name) == (info, eps):
            return previous
        return port_rules(name, info, eps, self.options, endpoint_comments=self.endpoint_comments)

    async def sync(
        self, services: ServicesMap, endpoints: EndpointsMap, changed: set[ServicePortName] | None
    ) -> SyncResult:
        total_endpoints = sum(len(endpoints.get(n, ())) for n in services)
        comments = total_endpoints <= LARGE_CLUSTER_ENDPOINTS
        if comments != self.endpoint_comments:
            self.endpoint_comments = comments
            self.inputs.clear()
            changed = None  # every endpoint rule changes its text
        if changed is None:
            await self._full(services, endpoints)
        else:
            await self._partial(services, endpoints, changed)
        await self.local_ports.sync(_local_ports(services))
        return SyncResult(self.rule_counts())

    async def _full(self, services: ServicesMap, endpoints: EndpointsMap) -> None:
        fresh: dict[ServicePortName, PortRules] = {}
        for name in services:
            rules = self._rules_for(name, services, endpoints)
            if rules is not None:
                fresh[name] = rules
        saved = await self.netns.run(_save_tables, self.backend)
        existing = {table: kube_chains(text) for table, text in saved.items()}
        present = {line for text in saved.values() for line in text.splitlines() if line.startswith(_BUILTIN)}
        missing = [j for j in JUMP_RULES if j.line not in present]
        policies = _builtin_policies(saved) if self.backend.list_before_full_restore else None
        ruleset = full_ruleset(
            fresh, self.options, existing_chains=existing, missing_jumps=missing, builtin_policies=policies
        )
        script = ruleset.render(list_first=self.backend.list_before_full_restore)
        self.last_restore_bytes = len(script)
        await self.netns.run(self.backend.restore, script)
        self.applied = fresh
        self.inputs = {name: (services[name], endpoints.get(name, ())) for name in fresh}
        await self._after_sync(services, endpoints, set(self.endpoints_seen) | set(services))

    async def _partial(
        self, services: ServicesMap, endpoints: EndpointsMap, changed: set[ServicePortName]
    ) -> None:
        changes: dict[ServicePortName, tuple[PortRules | None, PortRules | None]] = {}
        for name in changed:
            new = self._rules_for(name, services, endpoints)
            old = self.applied.get(name)
            if new != old:
                changes[name] = (old, new)
        script = partial_ruleset(changes).render()
        self.last_restore_bytes = len(script)
        if script:
            await self.netns.run(self.backend.restore, script)
        for name, (_, new) in changes.items():
            if new is None:
                self.applied.pop(name, None)
                self.inputs.pop(name, None)
            else:
                self.applied[name] = new
                self.inputs[name] = (services[name], endpoints.get(name, ()))
        await self._after_sync(services, endpoints, changed)

    async def _after_sync(
        self, services: ServicesMap, endpoints: EndpointsMap, names: set[ServicePortName]
    ) -> None:
        """Delete UDP flows made stale by this sync: flows to removed endpoints, and flows of
        services that had no endpoints (their REJECTs are remembered by conntrack too)."""
        stale: list[tuple[str, str]] = []
        stale_ports: list[int] = []
        for name in names:
            before = self.endpoints_seen.get(name, ())
            after = endpoints.get(name, ()) if name in services else ()
            if after:
                self.endpoints_seen[name] = after
            else:
                self.endpoints_seen.pop(name, None)
            info = services.get(name) or self.services_seen.get(name)
            if name.protocol != "udp" or info is None or before == after:
                continue
            ips = (info.cluster_ip, *info.external_ips, *info.load_balancer_ips)
            if not before and after:
                stale.extend((ip, "") for ip in ips)
                if info.node_port:
                    stale_ports.append(info.node_port)
            kept = {ep.ip for ep in after}
            stale.extend((ip, ep.ip) for ep in before if ep.ip not in kept for ip in ips)
        for name in names:
            if name in services:
                self.services_seen[name] = services[name]
            else:
                self.services_seen.pop(name, None)
        if stale or stale_ports:
            await self.netns.run(_clear_flows, stale, stale_ports)

    def rule_counts(self) -> dict[str, int]:
        counts = {"nat": len(nodeports_tail(self.options)), "filter": 0}
        for (table, _), lines in static_rules(self.options).items():
            counts[table] += len(lines)
        for rules in self.applied.values():
            nat, filt = rules.line_count()
            counts["nat"] += nat
            counts["filter"] += filt
        return counts


def _clear_flows(stale: list[tuple[str, str]], ports: list[int]) -> None:
    for service_ip, endpoint_ip in stale:
        conntrack.delete_service_flows(service_ip, endpoint_ip)
    for port in ports:
        conntrack.delete_port_flows(port)


_BUILTIN = ("-A INPUT ", "-A FORWARD ", "-A OUTPUT ", "-A PREROUTING ", "-A POSTROUTING ")


def _builtin_policies(saved: dict[str, str]) -> dict[tuple[str, str], str]:
    """The policy of every built-in chain the jumps use, as the save shows it (ACCEPT when the
    save does not show the chain)."""
    policies: dict[tuple[str, str], str] = {}
    for jump in JUMP_RULES:
        policy = "ACCEPT"
        for line in saved.get(jump.table, "").splitlines():
            if line.startswith(f":{jump.chain} "):
                policy = line.split(" ")[1]
                break
        policies[(jump.table, jump.chain)] = policy
    return policies


def _save_tables(backend: Backend) -> dict[str, str]:
    return {table: backend.save(table) for table in ("filter", "nat")}


def _write_sysctl(name: str, value: str) -> None:
    with open(f"/proc/sys/{name}", "w") as f:  # noqa: PTH123
        f.write(value)


def _local_ports(services: ServicesMap) -> set[LocalPort]:
    return {("", info.node_port, info.protocol) for info in services.values() if info.node_port}
