"""userspace mode: a proxy socket per service port, and the portal rules that send the
service's traffic to it (Kubernetes' pkg/proxy/userspace, interfaces.md section 3).

A service port keeps its socket and rules while its ServiceInfo is unchanged; an endpoints
change only updates the load balancer. A changed port is closed and reopened on a new proxy
port, as Kubernetes did. Full syncs rewrite our chains from the state we hold (healing an
external flush); partial syncs delete and append only the changed ports' rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from services.proxy import conntrack
from services.proxy.cleanup import cleanup_other_mode
from services.proxy.iptables_backend import Backend
from services.proxy.local_ports import LocalPort, LocalPorts
from services.proxy.mode import SyncResult
from services.proxy.netns import NodeNamespace
from services.proxy.service_port import EndpointsMap, ServiceInfo, ServicePortName, ServicesMap
from services.proxy.userspace import portals
from services.proxy.userspace.port_allocator import PortAllocator
from services.proxy.userspace.portal_rules import JUMPS, PortalRule, portal_rules
from services.proxy.userspace.proxysocket import (
    ProxySocket,
    TCPProxySocket,
    UDPProxySocket,
    open_listener,
)
from services.proxy.userspace.roundrobin import LoadBalancerRR

log = structlog.get_logger("proxy.userspace")


@dataclass
class _Port:
    info: ServiceInfo
    socket: ProxySocket
    rules: list[PortalRule]
    allocated: int


class UserspaceProxier:
    mode = "userspace"

    def __init__(
        self,
        backend: Backend,
        rules_ns: NodeNamespace,
        sockets_ns: NodeNamespace,
        *,
        host_ip: str,
        listen_ip: str = "0.0.0.0",
        udp_idle_timeout: float = 0.25,
        allocator: PortAllocator | None = None,
    ) -> None:
        if listen_ip in ("0.0.0.0", "::") and not host_ip:
            raise ValueError("userspace mode needs --node-ip: host traffic is DNATed to it")
        self.backend = backend
        self.rules_ns = rules_ns
        self.sockets_ns = sockets_ns
        self.host_ip = host_ip
        self.listen_ip = listen_ip
        self.udp_idle_timeout = udp_idle_timeout
        self.allocator = allocator or PortAllocator()
        self.lb = LoadBalancerRR()
        self.ports: dict[ServicePortName, _Port] = {}
        self.local_ports = LocalPorts(sockets_ns)
        self.needs_full = True

    async def start(self) -> None:
        await self.rules_ns.run(cleanup_other_mode, self.mode)
        # A previous run's sockets are gone: its rules point nowhere, flush them.
        await self.rules_ns.run(portals.ensure_and_flush, [])

    async def stop(self) -> None:
        for port in self.ports.values():
            await port.socket.close()
        self.local_ports.close()

    async def _open(self, name: ServicePortName, info: ServiceInfo) -> _Port:
        allocated = self.allocator.allocate()
        try:
            sock = await open_listener(self.sockets_ns, self.listen_ip, allocated, info.protocol)
        except OSError:
            self.allocator.release(allocated)
            raise
        proxy: ProxySocket
        if info.protocol == "udp":
            proxy = UDPProxySocket(name, sock, self.lb, self.sockets_ns, self.udp_idle_timeout)
        else:
            proxy = TCPProxySocket(name, sock, self.lb, self.sockets_ns)
        await proxy.start()
        self.lb.new_service(name, info.affinity_seconds)
        rules = portal_rules(name, info, proxy.port, self.listen_ip, self.host_ip)
        return _Port(info, proxy, rules, allocated)

    async def _close(self, name: ServicePortName, port: _Port, deleted: bool) -> None:
        await port.socket.close()
        self.allocator.release(port.allocated)
        if deleted:
            self.lb.delete_service(name)
        if port.info.protocol == "udp":
            await self.rules_ns.run(conntrack.delete_service_flows, port.info.cluster_ip, "")

    async def sync(
        self, services: ServicesMap, endpoints: EndpointsMap, changed: set[ServicePortName] | None
    ) -> SyncResult:
        full = changed is None or self.needs_full
        names = set(services) | set(self.ports) if changed is None else changed
        removed: list[PortalRule] = []
        added: list[PortalRule] = []
        for name in sorted(names):
            info = services.get(name)
            current = self.ports.get(name)
            if current is not None and current.info != info:
                del self.ports[name]
                removed.extend(current.rules)
                await self._close(name, current, deleted=info is None)
                current = None
            if info is not None and current is None:
                try:
                    current = self.ports[name] = await self._open(name, info)
                except OSError as exc:
                    log.warning("cannot open proxy socket", service=str(name), error=str(exc))
                    continue
                added.extend(current.rules)
            if info is not None:
                self.lb.update_endpoints(name, [str(ep) for ep in endpoints.get(name, ())])
        if full:
            every = [rule for port in self.ports.values() for rule in port.rules]
            await self.rules_ns.run(portals.ensure_and_flush, every)
            self.needs_full = False
        else:
            try:
                await self.rules_ns.run(portals.update, removed, added)
            except Exception:
                self.needs_full = True
                raise
        await self.local_ports.sync(_local_ports(self.ports))
        self.lb.cleanup_stale_sticky_sessions()
        return SyncResult(self.rule_counts())

    def rule_counts(self) -> dict[str, int]:
        counts = {"nat": 0, "filter": 0}
        for rule in JUMPS:
            counts[rule.table] += 1
        for port in self.ports.values():
            for rule in port.rules:
                counts[rule.table] += 1
        return counts


def _local_ports(ports: dict[ServicePortName, _Port]) -> set[LocalPort]:
    return {("", p.info.node_port, p.info.protocol) for p in ports.values() if p.info.node_port}
