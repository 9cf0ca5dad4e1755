"""`pinctl logs POD [-c CONTAINER] [-f] [-p] [--tail N] [--since 5m] [--timestamps]
[--limit-bytes N]`: a container's log through the apiserver's pods/log proxy, as `kubectl logs`
prints it (bytes as the container wrote them; with -f until the container stops or ^C)."""

from __future__ import annotations

import argparse
import math

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.pod_streams import choose_container, get_pod, write_bytes
from services.cli.workload_cli import duration


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("logs", help="print the logs of a container in a pod")
    parser.add_argument("pod", metavar="POD", help="NAME or pod/NAME")
    parser.add_argument("-c", "--container", default="", help="container name (default: the only/first one)")
    parser.add_argument("-f", "--follow", action="store_true", help="stream the log as it grows")
    parser.add_argument(
        "-p", "--previous", action="store_true", help="the log of the previous, terminated instance"
    )
    parser.add_argument("--tail", type=int, default=-1, help="only the last N lines (-1: all)")
    parser.add_argument("--since", type=duration, default=None, help="only lines newer than this, e.g. 5m")
    parser.add_argument("--timestamps", action="store_true", help="prefix each line with its RFC3339 time")
    parser.add_argument("--limit-bytes", type=int, default=0, help="stop after this many bytes (0: no limit)")
    flags.add_namespace(parser)
    parser.set_defaults(handler=run)


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    if args.limit_bytes < 0:
        raise CLIError("--limit-bytes must be greater than 0", EXIT_USAGE)
    if args.since is not None and args.since < 0:
        raise CLIError("--since must be greater than 0", EXIT_USAGE)
    pod = await get_pod(ctx, args.pod)
    container = choose_container(ctx, pod, args.container)
    chunks = ctx.client().node_proxy.pod_logs(
        pod.metadata.name,
        pod.metadata.namespace,
        container=container,
        follow=args.follow,
        previous=args.previous,
        timestamps=args.timestamps,
        tail_lines=args.tail if args.tail >= 0 else None,
        # kubectl rounds a duration up to whole seconds.
        since_seconds=math.ceil(args.since) if args.since else None,
        limit_bytes=args.limit_bytes or None,
    )
    async for chunk in chunks:
        write_bytes(ctx.out, chunk)
    return 0
