"""`pinctl rollout status|history|undo|pause|resume|restart TYPE/NAME`: watch a rollout
finish, list and show the revisions of a Deployment, DaemonSet or StatefulSet and roll back
to one, pause or resume a Deployment, or restart every pod of any of the three."""

from __future__ import annotations

import argparse

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.ops import podtemplate, rollout
from services.cli.ops.targets import Target, resolve
from services.cli.printers import kind_label
from services.cli.workload_cli import boolean, duration, kubectl_style


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resources", nargs="*", metavar="RESOURCE", help="TYPE NAME or TYPE/NAME")
    flags.add_namespace(parser)
    flags.add_selectors(parser, fields=False)
    flags.add_filenames(parser, what="act on")
    kubectl_style(parser)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("rollout", help="manage the rollout of a deployment, daemon set or stateful set")
    verbs = parser.add_subparsers(dest="rollout_command", required=True, metavar="SUBCOMMAND")

    status = verbs.add_parser("status", help="show the rollout's progress until it finishes")
    _common(status)
    status.add_argument(
        "-w",
        "--watch",
        type=boolean,
        nargs="?",
        const=True,
        default=True,
        help="keep watching (default true)",
    )
    status.add_argument(
        "--revision", type=int, default=0, help="fail unless the running revision is this one (deployments)"
    )
    status.add_argument(
        "--timeout", type=duration, default=0.0, help="give up after this long, e.g. 5m (0: wait forever)"
    )
    status.set_defaults(handler=run_status)

    history = verbs.add_parser(
        "history", help="list the revisions of a deployment, daemon set or stateful set"
    )
    _common(history)
    history.add_argument("--revision", type=int, default=0, help="show the pod template of this revision")
    history.set_defaults(handler=run_history)

    undo = verbs.add_parser("undo", help="roll back to the previous (or a given) revision")
    _common(undo)
    undo.add_argument(
        "--to-revision", type=int, default=0, help="the revision to roll back to (0: the previous)"
    )
    undo.set_defaults(handler=run_undo)

    for verb, paused in (("pause", True), ("resume", False)):
        command = verbs.add_parser(verb, help=f"{verb} a deployment's rollouts")
        _common(command)
        command.set_defaults(handler=run_pause, paused=paused)

    restart = verbs.add_parser(
        "restart", help="replace every pod of a deployment, daemon set or stateful set"
    )
    _common(restart)
    restart.set_defaults(handler=run_restart)


async def _targets(ctx: CommandContext, args: argparse.Namespace) -> list[Target]:
    if not args.resources and not args.filename:
        raise CLIError("required resource not specified", EXIT_USAGE)
    return await resolve(
        ctx.client(),
        args.resources,
        ctx.namespace,
        selector=args.selector,
        filenames=args.filename,
        recursive=args.recursive,
    )


def _name(target: Target) -> str:
    return f"{kind_label(target.info)}/{target.name}"


async def run_status(ctx: CommandContext, args: argparse.Namespace) -> int:
    found = await _targets(ctx, args)
    if len(found) != 1:
        raise CLIError(
            "rollout status is only supported on individual resources and resource collections - "
            f"{len(found)} resources were found"
        )
    target = found[0]
    await rollout.wait_for_rollout(
        ctx.client(),
        target.info,
        target.name,
        target.namespace,
        ctx.print,
        revision=args.revision,
        watch=args.watch,
        timeout=args.timeout,
    )
    return 0


async def run_history(ctx: CommandContext, args: argparse.Namespace) -> int:
    for target in await _targets(ctx, args):
        revisions = await rollout.history(ctx.client(), target.info, target.namespace, target.name)
        if args.revision > 0:
            revision = rollout.find_revision(revisions, args.revision)
            ctx.print(f"{_name(target)} with revision #{revision.number}")
            ctx.out.write(podtemplate.describe(revision.template))
        else:
            ctx.print(_name(target))
            ctx.out.write(rollout.history_table(revisions))
        ctx.out.flush()
    return 0


async def run_undo(ctx: CommandContext, args: argparse.Namespace) -> int:
    for target in await _targets(ctx, args):
        operation = await rollout.undo(
            ctx.client(), target.info, target.namespace, target.name, args.to_revision
        )
        ctx.print(f"{_name(target)} {operation}")
    return 0


async def run_pause(ctx: CommandContext, args: argparse.Namespace) -> int:
    for target in await _targets(ctx, args):
        operation = await rollout.set_paused(
            ctx.client(), target.info, target.namespace, target.name, args.paused
        )
        ctx.print(f"{_name(target)} {operation}")
    return 0


async def run_restart(ctx: CommandContext, args: argparse.Namespace) -> int:
    for target in await _targets(ctx, args):
        await rollout.restart(ctx.client(), target.info, target.namespace, target.name)
        ctx.print(f"{_name(target)} restarted")
    return 0
