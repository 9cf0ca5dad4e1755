"""`pinctl scale --replicas=N (TYPE NAME | TYPE/NAME | -f FILE | TYPE -l SEL | TYPE --all)`:
set replicas through the scale subresource; --current-replicas and --resource-version are
preconditions checked against what the server has before anything changes."""

from __future__ import annotations

import argparse

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.ops import targets
from services.cli.ops.scale import Preconditions, ensure_scalable, scale
from services.cli.printers import kind_label
from services.cli.workload_cli import kubectl_style


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "scale", help="set a new size for a deployment, replica set, replication controller or stateful set"
    )
    parser.add_argument("resources", nargs="*", metavar="RESOURCE", help="TYPE NAME..., TYPE/NAME...")
    parser.add_argument(
        "--replicas", type=int, default=None, help="the new desired number of replicas (required)"
    )
    parser.add_argument(
        "--current-replicas",
        type=int,
        default=-1,
        help="precondition: scale only if the current size is this (-1: no check)",
    )
    parser.add_argument(
        "--resource-version", default="", help="precondition: scale only if the resourceVersion is this"
    )
    parser.add_argument("--all", action="store_true", help="every object of the type in the namespace")
    flags.add_namespace(parser)
    flags.add_selectors(parser, fields=False)
    flags.add_filenames(parser, what="scale")
    kubectl_style(parser)
    parser.set_defaults(handler=run)


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    if args.replicas is None:
        raise CLIError('required flag(s) "replicas" not set', EXIT_USAGE)
    if args.replicas < 0:
        raise CLIError(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0", EXIT_USAGE
        )
    found = await targets.resolve(
        ctx.client(),
        args.resources,
        ctx.namespace,
        selector=args.selector,
        select_all=args.all,
        filenames=args.filename,
        recursive=args.recursive,
    )
    if not found:
        raise CLIError("no objects passed to scale")
    if args.resource_version and len(found) > 1:
        raise CLIError("cannot use --resource-version with multiple resources", EXIT_USAGE)
    for target in found:
        ensure_scalable(target.info)
    preconditions = Preconditions(args.current_replicas, args.resource_version)
    for target in found:
        await scale(ctx.client(), target.info, target.name, target.namespace, args.replicas, preconditions)
        ctx.print(f"{kind_label(target.info)}/{target.name} scaled")
    return 0
