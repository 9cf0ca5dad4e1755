"""`pinctl run NAME --image=IMAGE [--port] [--env K=V] [--labels k=v,...] [--restart
Always|OnFailure|Never] [--command] [-- WORDS...]`: create one Pod, as kubectl run does; the
words after `--` are the container's arguments, or its command with --command."""

from __future__ import annotations

import argparse

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.ops.run import RunSpec, build_pod
from services.cli.workload_cli import add_dry_run, add_output, kubectl_style, report


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("run", help="run a particular image in a pod")
    parser.add_argument("name", nargs="?", default="", metavar="NAME")
    parser.add_argument("--image", default="", help="the container image (required)")
    parser.add_argument("--port", default="", help="the port the container exposes")
    parser.add_argument("--env", action="append", default=[], help="an environment variable K=V (repeatable)")
    parser.add_argument("-l", "--labels", default="", help="the pod's labels k=v,... (default: run=NAME)")
    parser.add_argument("--annotations", action="append", default=[], help="an annotation k=v (repeatable)")
    parser.add_argument(
        "--restart", default="Always", help="the pod's restart policy: Always (default), OnFailure or Never"
    )
    parser.add_argument("--image-pull-policy", default="", help="Always, IfNotPresent or Never")
    parser.add_argument(
        "--command",
        dest="use_command",
        action="store_true",
        help="the words after -- are the command, not its arguments",
    )
    flags.add_namespace(parser)
    add_dry_run(parser)
    add_output(parser)
    kubectl_style(parser, rest="container_args")
    parser.set_defaults(handler=run, container_args=[])


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    pod = build_pod(
        RunSpec(
            name=args.name,
            image=args.image,
            port=args.port,
            env=args.env,
            labels=args.labels,
            annotations=args.annotations,
            restart=args.restart,
            image_pull_policy=args.image_pull_policy,
            command=args.use_command,
            args=list(args.container_args),
            namespace=ctx.namespace,
        )
    )
    if args.dry_run != "client":
        pod = await ctx.client().create(pod, dry_run=args.dry_run == "server")
    report(ctx, pod, "created", args.output, args.dry_run)
    return 0
