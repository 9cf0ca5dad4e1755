"""The userspace mode's iptables rules as values (interfaces.md 3.2 and 3.3): pure, so the
shapes are unit-tested without root; portals.py writes them with python-iptables."""

from __future__ import annotations

from dataclasses import dataclass

from services.proxy.service_port import ServiceInfo, ServicePortName

PORTALS_CONTAINER = "KUBE-PORTALS-CONTAINER"
PORTALS_HOST = "KUBE-PORTALS-HOST"
NODEPORT_CONTAINER = "KUBE-NODEPORT-CONTAINER"
NODEPORT_HOST = "KUBE-NODEPORT-HOST"
NODEPORT_NON_LOCAL = "KUBE-NODEPORT-NON-LOCAL"
OWNED_CHAINS = {
    "nat": (PORTALS_CONTAINER, PORTALS_HOST, NODEPORT_CONTAINER, NODEPORT_HOST),
    "filter": (NODEPORT_NON_LOCAL,),
}
PORTALS_COMMENT = "handle ClusterIPs; NOTE: this must be before the NodePort rules"
NODEPORTS_COMMENT = "handle service NodePorts; NOTE: this must be the last rule in the chain"
NON_LOCAL_COMMENT = "Ensure that non-local NodePort traffic can flow"


@dataclass(frozen=True)
class PortalRule:
    table: str
    chain: str
    comment: str
    protocol: str = ""
    dport: int = 0
    destination: str = ""  # "ip/32" or ""
    physdev_not_in: bool = False
    dst_local: bool = False
    state_new: bool = False
    target: str = ""  # REDIRECT, DNAT, ACCEPT or a chain
    to: str = ""  # REDIRECT: port; DNAT: ip:port
    prepend: bool = False  # jumps from built-in chains: -I instead of -A

    def args(self) -> str:
        """The rule as iptables(8) arguments, in Kubernetes' order (for logs, tests, docs)."""
        parts = [f'-m comment --comment "{self.comment}"']
        if self.protocol:
            parts.append(f"-p {self.protocol} -m {self.protocol} --dport {self.dport}")
        if self.destination:
            parts.append(f"-d {self.destination}")
        if self.physdev_not_in:
            parts.append("-m physdev ! --physdev-is-in")
        if self.dst_local:
            parts.append("-m addrtype --dst-type LOCAL")
        if self.state_new:
            parts.append("-m state --state NEW")
        parts.append(f"-j {self.target}")
        if self.target == "REDIRECT":
            parts.append(f"--to-ports {self.to}")
        elif self.target == "DNAT":
            parts.append(f"--to-destination {self.to}")
        return " ".join(parts)


JUMPS = (
    PortalRule("nat", "PREROUTING", PORTALS_COMMENT, target=PORTALS_CONTAINER, prepend=True),
    PortalRule("nat", "OUTPUT", PORTALS_COMMENT, target=PORTALS_HOST, prepend=True),
    PortalRule("nat", "PREROUTING", NODEPORTS_COMMENT, dst_local=True, target=NODEPORT_CONTAINER),
    PortalRule("nat", "OUTPUT", NODEPORTS_COMMENT, dst_local=True, target=NODEPORT_HOST),
    PortalRule("filter", "INPUT", NON_LOCAL_COMMENT, target=NODEPORT_NON_LOCAL, prepend=True),
)


def _cidr(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def _join(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def portal_rules(
    name: ServicePortName, info: ServiceInfo, proxy_port: int, listen_ip: str, host_ip: str
) -> list[PortalRule]:
    """Every rule one service port's portals need (openPortal/openOnePortal/openNodePort)."""
    comment, proto = str(name), info.protocol
    all_addresses = listen_ip in ("0.0.0.0", "::", "")
    if all_addresses:
        container_target, container_to = "REDIRECT", str(proxy_port)
    else:
        container_target, container_to = "DNAT", _join(listen_ip, proxy_port)
    host_to = _join(host_ip if all_addresses else listen_ip, proxy_port)

    def container(chain: str, dport: int, dst: str = "", **flags: bool) -> PortalRule:
        return PortalRule(
            "nat", chain, comment, proto, dport, dst, target=container_target, to=container_to, **flags
        )

    def host(chain: str, dport: int, dst: str = "", **flags: bool) -> PortalRule:
        return PortalRule("nat", chain, comment, proto, dport, dst, target="DNAT", to=host_to, **flags)

    rules = [
        container(PORTALS_CONTAINER, info.port, _cidr(info.cluster_ip)),
        host(PORTALS_HOST, info.port, _cidr(info.cluster_ip)),
    ]
    for ip in info.external_ips:
        rules += [
            container(PORTALS_CONTAINER, info.port, _cidr(ip), physdev_not_in=True),
            container(PORTALS_CONTAINER, info.port, _cidr(ip), dst_local=True),
            host(PORTALS_HOST, info.port, _cidr(ip), dst_local=True),
        ]
    for ip in info.load_balancer_ips:
        rules += [
            container(PORTALS_CONTAINER, info.port, _cidr(ip)),
            host(PORTALS_HOST, info.port, _cidr(ip)),
        ]
    if info.node_port:
        rules += [
            container(NODEPORT_CONTAINER, info.node_port),
            host(NODEPORT_HOST, info.node_port),
            PortalRule(
                "filter", NODEPORT_NON_LOCAL, comment, proto, proxy_port, state_new=True, target="ACCEPT"
            ),
        ]
    return rules
