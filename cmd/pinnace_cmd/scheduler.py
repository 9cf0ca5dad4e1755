"""pinnace-scheduler: binds unscheduled pods to nodes (docs/scheduler.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import uuid
from pathlib import Path

from prometheus_client import start_http_server

from services.client.client import Client
from services.client.config import load as load_client_config
from services.client.leaderelection import LeaderElector
from services.machinery.logs import configure_logging, get_logger
from services.scheduler.config import DEFAULT_SCHEDULER, ConfigError, SchedulerConfig, load_config
from services.scheduler.scheduler import Scheduler


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pinnace-scheduler", description=__doc__)
    p.add_argument("--apiserver", default="127.0.0.1:6443", help="apiserver address (host:port), plaintext")
    p.add_argument("--kubeconfig", default="", help="client configuration file (overrides --apiserver)")
    p.add_argument(
        "--scheduler-name",
        default="",
        help=f"pods whose spec.schedulerName this is (default {DEFAULT_SCHEDULER})",
    )
    p.add_argument("--config", default="", help="scheduler configuration file (YAML)")
    p.add_argument(
        "--leader-elect", type=_bool, default=True, help="elect a leader among replicas (default true)"
    )
    p.add_argument(
        "--leader-elect-resource-name",
        default="",
        help="Lease name (default kube-scheduler, or the scheduler name)",
    )
    p.add_argument("--leader-elect-resource-namespace", default="kube-system", help="Lease namespace")
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0, help="seconds")
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0, help="seconds")
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0, help="seconds")
    p.add_argument(
        "--metrics-listen", default="", help="Prometheus metrics address (host:port); off if empty"
    )
    return p


def lease_name(args: argparse.Namespace, config: SchedulerConfig) -> str:
    if args.leader_elect_resource_name:
        return str(args.leader_elect_resource_name)
    return "kube-scheduler" if config.scheduler_name == DEFAULT_SCHEDULER else config.scheduler_name


async def serve(args: argparse.Namespace, config: SchedulerConfig) -> None:
    log = get_logger("scheduler")
    client = (
        load_client_config(Path(args.kubeconfig)).client()
        if args.kubeconfig
        else Client.connect(args.apiserver)
    )
    client.use_pipeline()  # a binding and an Event per pod: many small writes at once
    if args.metrics_listen:
        host, _, port = args.metrics_listen.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0")
    async with client:
        scheduler = Scheduler(client, config)
        if not args.leader_elect:
            await scheduler.run()
            return
        identity = f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        elector = LeaderElector(
            client,
            lease_name(args, config),
            args.leader_elect_resource_namespace,
            identity,
            lease_duration=args.leader_elect_lease_duration,
            renew_deadline=args.leader_elect_renew_deadline,
            retry_period=args.leader_elect_retry_period,
        )
        try:
            await elector.run(scheduler.run)
        finally:
            await elector.release()
        # As kube-scheduler: a replica that lost the lease exits and is restarted fresh.
        log.error("leader election lost", identity=identity)
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging("scheduler")
    try:
        config = load_config(args.config) if args.config else SchedulerConfig()
    except (ConfigError, OSError) as exc:
        print(f"pinnace-scheduler: {exc}", file=sys.stderr)
        return 2
    if args.scheduler_name:
        config.scheduler_name = args.scheduler_name
    try:
        asyncio.run(serve(args, config))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
