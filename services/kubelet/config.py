"""The kubelet's configuration: every flag of `pinnace kubelet` in one value, so the program,
the tests and the benchmark build the same kubelet."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

KUBELET_VERSION = "v0.1.0-pinnace"
DEFAULT_ROOT_DIR = Path("/var/lib/pinnace/kubelet")
DEFAULT_CRI_SOCKET = "/run/pinnace/cri-docker.sock"
LEASE_RENEW_FRACTION = 0.25


@dataclass
class KubeletConfig:
    node_name: str = field(default_factory=socket.gethostname)
    apiserver: str = "127.0.0.1:6443"
    container_runtime_endpoint: str = DEFAULT_CRI_SOCKET
    root_dir: Path = DEFAULT_ROOT_DIR
    pod_manifest_path: Path | None = None
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    max_pods: int = 110
    sync_frequency: float = 10.0
    register_node: bool = True
    node_ip: str = ""
    node_labels: dict[str, str] = field(default_factory=dict)
    # The Node API (gRPC): logs, exec, attach, port-forward, stats. "" disables it.
    node_api_listen: str = "127.0.0.1:10250"
    # Node API security (services/kubelet/node_api_auth.py): TLS with the given pair (else a
    # self-signed one in <root-dir>/pki), client certificates verified against client_ca_file.
    # node_api_insecure serves plaintext with no authentication (development and old tests).
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    client_ca_file: str = ""
    node_api_insecure: bool = False
    metrics_listen: str = ""
    # The network namespace in which pod IPs and the runtime's streaming server are reachable
    # (a path such as /var/run/netns/<name>); "" is the kubelet's own. Tests run the runtime
    # in a node netns while the kubelet stays in the root one (docs/kubelet.md).
    network_namespace: str = ""
    # CNI configuration the kubelet writes from Node.spec.podCIDR ("" conf dir: not written).
    cni_conf_dir: Path | None = None
    cni_bin_dirs: tuple[Path, ...] = (Path("/opt/cni/bin"), Path("/usr/lib/cni"))
    cni_data_dir: Path = Path("/var/lib/cni/networks")
    cni_bridge: str = "cni0"
    cni_plugin: str = "auto"  # auto, pinnace or reference
    # Heartbeats and timings (Kubernetes' defaults; tests shorten some of them).
    node_status_update_frequency: float = 10.0
    node_lease_duration_seconds: int = 40
    relist_period: float = 1.0
    housekeeping_interval: float = 2.0
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    backoff_reset_after: float = 600.0
    # Garbage collection of dead containers and unused images.
    gc_interval: float = 60.0
    max_dead_per_container: int = 1
    image_gc_high_threshold_percent: int = 85
    image_gc_low_threshold_percent: int = 80
    image_minimum_age: float = 120.0
    cri_timeout: float = 120.0

    @property
    def lease_renew_interval(self) -> float:
        """A quarter of the Lease's duration, as Kubernetes' kubelet renews it
        (nodeLeaseRenewIntervalFraction 0.25): the node lifecycle controller's grace period is
        usually the lease duration, so a node misses three renewals before it looks silent."""
        return self.node_lease_duration_seconds * LEASE_RENEW_FRACTION

    @property
    def pods_dir(self) -> Path:
        return self.root_dir / "pods"

    @property
    def logs_dir(self) -> Path:
        return self.root_dir / "logs"
