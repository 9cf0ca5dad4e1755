"""pinnace-proxy: kube-proxy, making Services' ClusterIPs and NodePorts work on this node."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
import socket
import sys

import structlog

from services.machinery.logs import configure_logging
from services.proxy.cleanup import cleanup_everything
from services.proxy.config import IPTABLES_BACKENDS, MODES, ProxyConfig
from services.proxy.proxy import KubeProxy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--apiserver", default="127.0.0.1:6443", help="apiserver address (host:port)")
    parser.add_argument(
        "--proxy-mode", choices=MODES, default="iptables", help="how services are implemented"
    )
    parser.add_argument(
        "--iptables-backend",
        choices=IPTABLES_BACKENDS,
        default="nft",
        help="iptables mode: nf_tables (incremental commits) or legacy xtables; userspace mode is "
        "always legacy",
    )
    parser.add_argument(
        "--hostname-override", "--node-name", dest="node_name", default="", help="this node's name"
    )
    parser.add_argument(
        "--node-ip", default="", help="this node's address (userspace mode DNATs host traffic to it)"
    )
    parser.add_argument(
        "--cluster-cidr", default="", help="pod CIDR; service traffic from outside it is masqueraded"
    )
    parser.add_argument("--min-sync-period", type=float, default=1.0, help="seconds between syncs, at least")
    parser.add_argument(
        "--sync-period", type=float, default=30.0, help="seconds between full resyncs, at most"
    )
    parser.add_argument(
        "--nodeport-addresses",
        default="",
        help="comma-separated CIDRs NodePorts answer on (default: every local address)",
    )
    parser.add_argument("--healthz-listen", default="0.0.0.0:10256", help="healthz address; off if empty")
    parser.add_argument("--metrics-listen", default="127.0.0.1:10249", help="metrics address; off if empty")
    parser.add_argument("--bind-address", default="0.0.0.0", help="userspace mode: proxy sockets' address")
    parser.add_argument(
        "--udp-timeout", type=float, default=0.25, help="userspace mode: idle UDP flow, seconds"
    )
    parser.add_argument("--masquerade-all", action="store_true", help="SNAT all service traffic")
    parser.add_argument(
        "--netns",
        default="",
        help="network namespace (path, e.g. /run/netns/NAME) holding this node's rules and sockets, "
        "while the API client stays here (labs and tests)",
    )
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="remove every rule either mode created (both backends), then exit",
    )


def config_from(args: argparse.Namespace) -> ProxyConfig:
    return ProxyConfig(
        apiserver=args.apiserver,
        mode=args.proxy_mode,
        iptables_backend=args.iptables_backend,
        node_name=args.node_name or socket.gethostname(),
        node_ip=args.node_ip,
        cluster_cidr=args.cluster_cidr,
        min_sync_period=args.min_sync_period,
        sync_period=args.sync_period,
        nodeport_addresses=[c for c in args.nodeport_addresses.split(",") if c],
        healthz_listen=args.healthz_listen,
        metrics_listen=args.metrics_listen,
        netns=args.netns,
        masquerade_all=args.masquerade_all,
        udp_idle_timeout=args.udp_timeout,
        bind_address=args.bind_address,
    )


def _raise_nofile() -> None:
    """A userspace proxy holds two sockets per connection; Kubernetes raised this to 64000."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(64000, hard) if hard != resource.RLIM_INFINITY else 64000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def _serve(config: ProxyConfig) -> None:
    proxy = KubeProxy(config)
    task = asyncio.create_task(proxy.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await proxy.client.close()
        proxy.close()


def run(args: argparse.Namespace) -> int:
    configure_logging("proxy")
    log = structlog.get_logger("proxy")
    try:
        config = config_from(args)
    except ValueError as exc:
        print(f"pinnace-proxy: {exc}", file=sys.stderr)
        return 2
    if args.cleanup:
        removed = cleanup_everything(config.netns)
        log.info("cleanup done", chains_removed=removed)
        return 0
    _raise_nofile()
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        with contextlib.suppress(Exception):
            log.error("kube-proxy failed", error=str(exc))
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace-proxy", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
