"""kube-proxy's configuration (the flags of pinnace-proxy, docs/proxy.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

MODES = ("iptables", "userspace")
# --iptables-backend values (iptables mode; userspace mode always uses legacy).
IPTABLES_BACKENDS = ("nft", "legacy")
# Kubernetes' --iptables-masquerade-bit default: 1 << 14.
MASQUERADE_MARK = "0x4000"


@dataclass
class ProxyConfig:
    apiserver: str = "127.0.0.1:6443"
    mode: str = "iptables"
    iptables_backend: str = "nft"
    node_name: str = ""
    # The node's own address: the DNAT target of host-originated traffic in userspace mode.
    node_ip: str = ""
    # Pod CIDR of the whole cluster; traffic from outside it to a service is masqueraded.
    cluster_cidr: str = ""
    min_sync_period: float = 1.0
    sync_period: float = 30.0
    # Restrict NodePorts to these CIDRs (empty: every local address, `--dst-type LOCAL`).
    nodeport_addresses: list[str] = field(default_factory=list)
    healthz_listen: str = "0.0.0.0:10256"
    metrics_listen: str = "127.0.0.1:10249"
    # Lab and tests: the network namespace (a path such as /run/netns/NAME) whose rules and
    # sockets this proxy owns, while its API client stays in the namespace it started in.
    netns: str = ""
    masquerade_all: bool = False
    udp_idle_timeout: float = 0.25  # seconds, as Kubernetes' --udp-timeout
    # Userspace mode: proxy sockets listen here; 0.0.0.0 means REDIRECT + DNAT to node_ip.
    bind_address: str = "0.0.0.0"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"--proxy-mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.iptables_backend not in IPTABLES_BACKENDS:
            raise ValueError(
                f"--iptables-backend must be one of {', '.join(IPTABLES_BACKENDS)}, "
                f"not {self.iptables_backend!r}"
            )
        if self.min_sync_period < 0 or self.sync_period <= 0:
            raise ValueError("sync periods must be positive")
