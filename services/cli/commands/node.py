"""`pinctl cordon NODE`, `pinctl uncordon NODE` and `pinctl drain NODE [--ignore-daemonsets]
[--delete-emptydir-data] [--force] [--grace-period] [--timeout]`: take a node out of
scheduling and move its pods away through evictions (services/cli/ops/drain.py)."""

from __future__ import annotations

import argparse

from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.ops import drain
from services.cli.ops.objects import meta_of
from services.cli.workload_cli import add_dry_run, duration, kubectl_style


def _nodes_and_selector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("nodes", nargs="*", metavar="NODE")
    parser.add_argument("-l", "--selector", default="", help="act on the nodes with these labels")
    add_dry_run(parser)
    kubectl_style(parser)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for verb, desired in (("cordon", True), ("uncordon", False)):
        parser = sub.add_parser(verb, help=f"mark a node as {'un' if desired else ''}schedulable")
        _nodes_and_selector(parser)
        parser.set_defaults(handler=run_cordon, unschedulable=desired, verb=verb)

    parser = sub.add_parser("drain", help="cordon a node and evict its pods")
    _nodes_and_selector(parser)
    parser.add_argument("--force", action="store_true", help="also delete pods no controller manages")
    parser.add_argument("--ignore-daemonsets", action="store_true", help="leave DaemonSet-managed pods alone")
    parser.add_argument(
        "--delete-emptydir-data", action="store_true", help="also delete pods using emptyDir volumes"
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        default=-1,
        help="seconds each pod gets to terminate (negative: the pod's own setting)",
    )
    parser.add_argument(
        "--timeout", type=duration, default=0.0, help="give up after this long, e.g. 5m (0: wait forever)"
    )
    parser.add_argument("--pod-selector", default="", help="only evict the pods with these labels")
    parser.add_argument(
        "--disable-eviction",
        action="store_true",
        help="delete pods instead of evicting them (bypasses budgets)",
    )
    parser.add_argument(
        "--skip-wait-for-delete-timeout",
        type=int,
        default=0,
        help="do not wait for pods whose deletion started more than this many seconds ago",
    )
    parser.set_defaults(handler=run_drain, verb="drain")


async def _nodes(ctx: CommandContext, args: argparse.Namespace) -> list[str]:
    if args.nodes and args.selector:
        raise CLIError("cannot specify both a node name and a --selector option", EXIT_USAGE)
    if args.nodes:
        return list(args.nodes)
    if not args.selector:
        raise CLIError(f"USAGE: {args.verb} NODE [flags]", EXIT_USAGE)
    listed = await ctx.client().list_all(drain.NODES, label_selector=args.selector)
    return [meta_of(node).name for node in listed.items]


def _suffix(args: argparse.Namespace) -> str:
    return {"client": " (dry run)", "server": " (server dry run)"}.get(args.dry_run, "")


async def _cordon_all(ctx: CommandContext, args: argparse.Namespace, nodes: list[str], desired: bool) -> None:
    for name in nodes:
        operation = await drain.set_unschedulable(ctx.client(), name, desired, dry_run=args.dry_run != "none")
        ctx.print(f"node/{name} {operation}{_suffix(args)}")


async def run_cordon(ctx: CommandContext, args: argparse.Namespace) -> int:
    await _cordon_all(ctx, args, await _nodes(ctx, args), args.unschedulable)
    return 0


async def run_drain(ctx: CommandContext, args: argparse.Namespace) -> int:
    if args.dry_run == "server":
        raise CLIError("drain does not support --dry-run=server", EXIT_USAGE)
    nodes = await _nodes(ctx, args)
    await _cordon_all(ctx, args, nodes, True)
    options = drain.DrainOptions(
        force=args.force,
        ignore_daemonsets=args.ignore_daemonsets,
        delete_emptydir_data=args.delete_emptydir_data,
        grace_period=args.grace_period,
        timeout=args.timeout,
        pod_selector=args.pod_selector,
        disable_eviction=args.disable_eviction,
        skip_wait_for_delete_timeout=args.skip_wait_for_delete_timeout,
    )
    failures: list[str] = []
    pending: list[str] = []
    for name in nodes:
        try:
            await drain.drain_node(
                ctx.client(), name, options, ctx.print, ctx.warn, dry_run=args.dry_run == "client"
            )
        except CLIError as exc:
            ctx.warn(
                f'error: unable to drain node "{name}" due to error: {exc.message}, continuing command...'
            )
            failures.append(exc.message)
            pending.append(name)
            continue
        ctx.print(f"node/{name} drained{_suffix(args)}")
    if pending:
        ctx.warn("There are pending nodes to be drained:")
        for name in pending:
            ctx.warn(f" {name}")
        raise CLIError(drain.aggregate(failures))
    return 0
