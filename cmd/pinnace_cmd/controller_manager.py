"""pinnace-controller-manager: runs the controllers (also `pinnace controller-manager`)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

from prometheus_client import start_http_server

from services.client.client import Client
from services.client.config import load as load_client_config
from services.controllers.base import Settings
from services.controllers.manager import CONTROLLERS, ControllerManager, enabled_controllers
from services.machinery.logs import configure_logging, get_logger

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")
# --concurrent-<flag>-syncs -> controller name
_CONCURRENCY = {
    "endpoint": "endpoint",
    "rc": "replicationcontroller",
    "replicaset": "replicaset",
    "deployment": "deployment",
    "gc": "garbagecollector",
    "namespace": "namespace",
    "serviceaccount-token": "serviceaccount",
    "job": "job",
}


def duration(text: str) -> float:
    """Seconds from a Go-style duration ("40s", "5m", "1m30s", "500ms") or a bare number."""
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (examples: 40s, 5m, 500ms)")
    hours, minutes, secs, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + secs + millis / 1000


def boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--apiserver", default="127.0.0.1:6443", help="apiserver address (host:port), plaintext"
    )
    parser.add_argument("--kubeconfig", default="", help="client configuration file (overrides --apiserver)")
    parser.add_argument(
        "--controllers",
        default="*",
        help=f"comma list; '*' all, 'name' enables, '-name' disables. Known: {','.join(CONTROLLERS)}",
    )
    parser.add_argument("--cluster-cidr", default="10.244.0.0/16", help="pod CIDR of the cluster")
    parser.add_argument(
        "--node-cidr-mask-size", type=int, default=24, help="prefix length of each node's podCIDR"
    )
    parser.add_argument(
        "--node-monitor-period", type=duration, default=5.0, help="how often node health is checked"
    )
    parser.add_argument(
        "--node-monitor-grace-period", type=duration, default=40.0, help="silence before a node is Unknown"
    )
    parser.add_argument(
        "--node-startup-grace-period",
        type=duration,
        default=60.0,
        help="silence allowed to a registering node",
    )
    parser.add_argument(
        "--pod-eviction-timeout",
        type=duration,
        default=300.0,
        help="toleration assumed for not-ready/unreachable taints when a pod has none",
    )
    parser.add_argument(
        "--node-eviction-rate", type=float, default=0.1, help="nodes tainted per second per zone"
    )
    parser.add_argument(
        "--secondary-node-eviction-rate", type=float, default=0.01, help="rate in a partially disrupted zone"
    )
    parser.add_argument(
        "--unhealthy-zone-threshold",
        type=float,
        default=0.55,
        help="fraction of not-ready nodes that pauses a zone",
    )
    parser.add_argument(
        "--large-cluster-size-threshold",
        type=int,
        default=50,
        help="nodes above which the secondary rate applies",
    )
    parser.add_argument(
        "--namespace-sync-retry", type=duration, default=1.0, help="re-check of a terminating namespace"
    )
    parser.add_argument("--horizontal-pod-autoscaler-sync-period", type=duration, default=15.0)
    parser.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=duration, default=300.0)
    parser.add_argument("--horizontal-pod-autoscaler-tolerance", type=float, default=0.1)
    parser.add_argument(
        "--job-backoff", type=duration, default=10.0, help="first back-off before replacing failed Job pods"
    )
    parser.add_argument(
        "--terminated-pod-gc-threshold",
        type=int,
        default=12500,
        help="terminated pods kept before the pod garbage collector deletes the oldest (0: no limit)",
    )
    for flag, name in _CONCURRENCY.items():
        parser.add_argument(
            f"--concurrent-{flag}-syncs", type=int, default=0, help=f"workers of the {name} controller"
        )
    parser.add_argument(
        "--cluster-signing-cert-file", default="", help="CA certificate (PEM) that signs approved CSRs"
    )
    parser.add_argument("--cluster-signing-key-file", default="", help="private key (PEM) of that CA")
    parser.add_argument(
        "--root-ca-file",
        default="",
        help="CA bundle (PEM) published as kube-root-ca.crt in every namespace; "
        "default: the CA of --kubeconfig",
    )
    parser.add_argument(
        "--cluster-signing-duration",
        type=duration,
        default=365 * 24 * 3600.0,
        help="validity of signed certificates (default 8760h); a CSR's expirationSeconds may shorten it",
    )
    parser.add_argument(
        "--leader-elect", type=boolean, default=True, nargs="?", const=True, help="elect a leader"
    )
    parser.add_argument("--leader-elect-lease-duration", type=duration, default=15.0)
    parser.add_argument("--leader-elect-renew-deadline", type=duration, default=10.0)
    parser.add_argument("--leader-elect-retry-period", type=duration, default=2.0)
    parser.add_argument(
        "--metrics-listen", default="", help="Prometheus metrics address (host:port); off if empty"
    )


def settings_from(args: argparse.Namespace) -> Settings:
    workers = {}
    for flag, name in _CONCURRENCY.items():
        value = getattr(args, f"concurrent_{flag.replace('-', '_')}_syncs")
        if value > 0:
            workers[name] = value
    return Settings(
        workers=workers,
        node_monitor_period=args.node_monitor_period,
        node_monitor_grace_period=args.node_monitor_grace_period,
        node_startup_grace_period=args.node_startup_grace_period,
        pod_eviction_timeout=args.pod_eviction_timeout,
        eviction_rate=args.node_eviction_rate,
        secondary_eviction_rate=args.secondary_node_eviction_rate,
        unhealthy_zone_threshold=args.unhealthy_zone_threshold,
        large_cluster_threshold=args.large_cluster_size_threshold,
        cluster_cidr=args.cluster_cidr,
        node_cidr_mask_size=args.node_cidr_mask_size,
        namespace_retry_seconds=args.namespace_sync_retry,
        job_backoff_seconds=args.job_backoff,
        terminated_pod_gc_threshold=args.terminated_pod_gc_threshold,
        hpa_sync_period=args.horizontal_pod_autoscaler_sync_period,
        hpa_downscale_stabilization=args.horizontal_pod_autoscaler_downscale_stabilization,
        hpa_tolerance=args.horizontal_pod_autoscaler_tolerance,
        cluster_signing_cert_file=args.cluster_signing_cert_file,
        cluster_signing_key_file=args.cluster_signing_key_file,
        cluster_signing_duration=args.cluster_signing_duration,
    )


async def serve(args: argparse.Namespace) -> None:
    names = enabled_controllers(args.controllers)
    if args.metrics_listen:
        host, _, port = args.metrics_listen.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0")
    credentials = load_client_config(Path(args.kubeconfig)) if args.kubeconfig else None
    client = credentials.client() if credentials is not None else Client.connect(args.apiserver)
    client.use_pipeline()  # controllers create pods and Events in bursts (a scale-up, a rollout)
    settings = settings_from(args)
    if args.root_ca_file:
        settings.root_ca = Path(args.root_ca_file).read_bytes()
    elif credentials is not None:
        settings.root_ca = credentials.ca_pem
    async with client:
        manager = ControllerManager(
            client,
            settings,
            names,
            leader_elect=args.leader_elect,
            lease_duration=args.leader_elect_lease_duration,
            renew_deadline=args.leader_elect_renew_deadline,
            retry_period=args.leader_elect_retry_period,
        )
        get_logger("controller-manager").info(
            "starting", apiserver=args.apiserver, controllers=names, identity=manager.identity
        )
        await manager.run()


def run(args: argparse.Namespace) -> int:
    configure_logging("controller-manager")
    try:
        enabled_controllers(args.controllers)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace-controller-manager", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
