"""`pinctl expose (TYPE NAME | TYPE/NAME | -f FILE) [--port] [--target-port] [--type]
[--name] [--protocol] [--selector] [--labels]`: a Service in front of a pod, service,
replication controller, replica set or deployment (selector and ports from the object)."""

from __future__ import annotations

import argparse

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import CLIError
from services.cli.ops import expose, targets
from services.cli.workload_cli import add_dry_run, add_output, kubectl_style, report


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("expose", help="create a service for a pod, controller or deployment")
    parser.add_argument("resources", nargs="*", metavar="RESOURCE", help="TYPE NAME or TYPE/NAME")
    parser.add_argument(
        "--port", default="", help="the service's port (default: the object's container ports)"
    )
    parser.add_argument(
        "--target-port", default="", help="the pods' port or port name (default: the same as --port)"
    )
    parser.add_argument("--protocol", default="", help="TCP (default), UDP or SCTP")
    parser.add_argument(
        "--type", default="", help="ClusterIP (default), NodePort, LoadBalancer or ExternalName"
    )
    parser.add_argument("--name", default="", help="the service's name (default: the object's)")
    parser.add_argument("--selector", default="", help="pod selector k=v,... (default: from the object)")
    parser.add_argument(
        "-l", "--labels", default="", help="the service's labels k=v,... (default: the object's)"
    )
    parser.add_argument(
        "--cluster-ip", default="", help="a cluster IP to ask for, or None for a headless service"
    )
    parser.add_argument("--external-ip", action="append", default=[], help="an external IP (repeatable)")
    parser.add_argument("--session-affinity", default="", help="None or ClientIP")
    flags.add_namespace(parser)
    flags.add_filenames(parser, what="expose")
    add_dry_run(parser)
    add_output(parser)
    kubectl_style(parser)
    parser.set_defaults(handler=run)


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    found = await targets.resolve(
        ctx.client(), args.resources, ctx.namespace, filenames=args.filename, recursive=args.recursive
    )
    if not found:
        raise CLIError("no objects passed to expose")
    spec = expose.ExposeSpec(
        port=args.port,
        target_port=args.target_port,
        protocol=args.protocol,
        type=args.type,
        name=args.name,
        selector=args.selector,
        labels=args.labels,
        cluster_ip=args.cluster_ip,
        external_ips=args.external_ip,
        session_affinity=args.session_affinity,
    )
    for target in found:
        expose.check_exposable(target.info)
        obj = await ctx.client().get(target.info, target.name, target.namespace)
        service = expose.build_service(obj, spec)
        if args.dry_run != "client":
            service = await ctx.client().create(service, dry_run=args.dry_run == "server")
        report(ctx, service, "exposed", args.output, args.dry_run)
    return 0
