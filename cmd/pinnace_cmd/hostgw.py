"""pinnace-hostgw: route every other node's pod CIDR via that node's address (docs/hostgw.md)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from pathlib import Path

from services.client.client import Client
from services.client.config import ConfigError
from services.client.config import load as load_client_config
from services.hostgw.controller import DEFAULT_SERVICE_DEVICE, HostGateway, HostGWConfig
from services.hostgw.netlink import NetlinkRouteTable
from services.machinery.logs import configure_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", default="", help="client configuration file (overrides --apiserver)")
    parser.add_argument(
        "--apiserver", default="127.0.0.1:6443", help="apiserver address (host:port), plaintext"
    )
    parser.add_argument(
        "--node-name", default=socket.gethostname(), help="this node's name (its routes are skipped)"
    )
    parser.add_argument(
        "--node-ip",
        default="",
        help="this node's address, source of service traffic (default: its InternalIP)",
    )
    parser.add_argument(
        "--cluster-cidr", default="10.244.0.0/16", help="pod CIDR of the cluster (unreachable catch-all)"
    )
    parser.add_argument(
        "--service-cidr", default="10.96.0.0/12", help="service CIDR (routed to --service-device)"
    )
    parser.add_argument(
        "--service-device",
        default=DEFAULT_SERVICE_DEVICE,
        help="portless bridge holding the service CIDR's route",
    )
    parser.add_argument("--resync-period", type=float, default=30.0, help="seconds between full re-checks")
    parser.add_argument(
        "--netns",
        default="",
        help="network namespace (path, e.g. /run/netns/NAME) whose routes to keep, while the API client "
        "stays here (labs and tests)",
    )


def config_from(args: argparse.Namespace) -> HostGWConfig:
    return HostGWConfig(
        node_name=args.node_name,
        cluster_cidr=args.cluster_cidr,
        service_cidr=args.service_cidr,
        node_ip=args.node_ip,
        service_device=args.service_device,
        resync_seconds=args.resync_period,
    )


async def serve(client: Client, config: HostGWConfig, netns: str = "") -> None:
    """Run host-gw until cancelled; the caller owns `client`."""
    table = NetlinkRouteTable(netns)
    try:
        await HostGateway(client, table, config).run()
    finally:
        await table.close()


async def _main(args: argparse.Namespace, config: HostGWConfig) -> None:
    client = (
        load_client_config(Path(args.kubeconfig)).client()
        if args.kubeconfig
        else Client.connect(args.apiserver)
    )
    task = asyncio.create_task(serve(client, config, args.netns))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await client.close()


def run(args: argparse.Namespace) -> int:
    configure_logging("hostgw")
    try:
        config = config_from(args)
        asyncio.run(_main(args, config))
    except (ValueError, ConfigError, OSError) as exc:
        print(f"pinnace-hostgw: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace-hostgw", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
