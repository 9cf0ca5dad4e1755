"""`pinctl delete`: objects named by -f, TYPE NAME..., TYPE/NAME..., -l or --all, with
kubectl's grace period, cascade and wait semantics: by default it prints `pod "web" deleted`
and then waits until the object is really gone (finalizers run, the kubelet confirmed)."""

from __future__ import annotations

import argparse
import asyncio

from google.protobuf.message import Message

from services.cli import flags, printers
from services.cli.context import CommandContext
from services.cli.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CLIError, describe_api_error
from services.cli.fetch import fetch, no_resources_message
from services.cli.manifests import load_items
from services.cli.ops.duration import DurationError, parse_duration
from services.cli.resources import parse_refs
from services.client.client import Client
from services.client.errors import APIStatusError, ExpiredError, NotFoundError
from services.machinery.kinds import KindInfo

_CASCADE = {
    "background": "Background",
    "foreground": "Foreground",
    "orphan": "Orphan",
    "true": "Background",
    "false": "Orphan",
}


def _bool(text: str) -> bool:
    value = text.lower()
    if value not in ("true", "false", "1", "0", "t", "f"):
        raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")
    return value in ("true", "1", "t")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("delete", help="delete objects by file, name, label selector or --all")
    parser.add_argument("resources", nargs="*", metavar="RESOURCE", help="TYPE [NAME...] or TYPE/NAME...")
    flags.add_filenames(parser, what="delete")
    flags.add_namespace(parser, all_namespaces=True)
    flags.add_selectors(parser)
    parser.add_argument("--all", action="store_true", help="every object of the given types in the namespace")
    parser.add_argument(
        "--ignore-not-found", action="store_true", help="a missing object is no error (default with --all)"
    )
    parser.add_argument(
        "--grace-period", type=int, default=-1, help="seconds for the object to stop (-1: its own default)"
    )
    parser.add_argument("--now", action="store_true", help="signal the object to stop at once (grace 1s)")
    parser.add_argument(
        "--force", action="store_true", help="remove at once, without waiting for the kubelet (grace 0)"
    )
    parser.add_argument(
        "--cascade",
        default="background",
        choices=sorted(_CASCADE),
        help="what happens to dependents: background (default), foreground or orphan",
    )
    parser.add_argument(
        "--wait",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="wait until the objects are gone (default true; --wait=false returns at once)",
    )
    parser.add_argument("--timeout", default="0", help="how long to wait (Go duration; 0: no limit)")
    parser.add_argument("-o", "--output", choices=("name",), help="print only kind/name of each object")
    parser.set_defaults(handler=run)


def _grace(args: argparse.Namespace) -> int | None:
    if args.now and args.grace_period >= 0:
        raise CLIError("--now and --grace-period cannot be specified together", EXIT_USAGE)
    if args.now:
        return 1
    if args.force and args.grace_period < 0:
        return 0
    return args.grace_period if args.grace_period >= 0 else None


async def wait_gone(client: Client, info: KindInfo, obj: Message, timeout: float) -> None:
    """Until the object with obj's uid no longer exists (a watch, re-established if it ends)."""
    meta = obj.metadata  # type: ignore[attr-defined]

    async def until_gone() -> None:
        while True:
            try:
                current = await client.get(info, meta.name, meta.namespace)
            except NotFoundError:
                return
            if current.metadata.uid != meta.uid:  # type: ignore[attr-defined]
                return
            try:
                async for event in client.watch(
                    info,
                    meta.namespace,
                    field_selector=f"metadata.name={meta.name}",
                    resource_version=current.metadata.resource_version,  # type: ignore[attr-defined]
                ):
                    if event.type == "DELETED" and event.obj.metadata.uid == meta.uid:  # type: ignore[attr-defined]
                        return
            except ExpiredError:
                continue

    try:
        await asyncio.wait_for(until_gone(), timeout if timeout > 0 else None)
    except TimeoutError:
        raise CLIError(f"timed out waiting for the condition on {info.plural}/{meta.name}") from None


def _deleted_message(info: KindInfo, name: str, forced: bool) -> str:
    return f'{printers.kind_label(info)} "{name}" {"force deleted" if forced else "deleted"}'


Target = tuple[KindInfo, str, str, str]


async def _targets(ctx: CommandContext, args: argparse.Namespace) -> list[Target]:
    """(kind, namespace, name, source file) of every object to delete."""
    if args.filename:
        if args.resources:
            raise CLIError(
                "when paths, URLs, or stdin is provided as input, you may not specify resource arguments "
                "as well"
            )
        items = load_items(
            args.filename,
            recursive=args.recursive,
            namespace=ctx.namespace,
            explicit_namespace=bool(args.namespace),
            validate=False,
            verb="delete",
        )
        return [(i.info, i.namespace, i.name, i.source) for i in items]
    if not args.resources:
        raise CLIError("You must provide one or more resources by argument or filename.")
    refs = parse_refs(args.resources)
    named = any(name for _, name in refs)
    if named and args.all:
        raise CLIError("name cannot be provided when --all is specified", EXIT_USAGE)
    if not named and not (args.all or args.selector or args.field_selector):
        raise CLIError("resource(s) were provided, but no name, label selector, or --all flag specified")
    if ctx.all_namespaces and named:
        raise CLIError("a resource cannot be retrieved by name across all namespaces")
    if named:
        return [(info, ctx.namespace if info.namespaced else "", name, "") for info, name in refs]
    fetched = await fetch(ctx, refs, label_selector=args.selector, field_selector=args.field_selector)
    targets = [
        (group.info, obj.metadata.namespace, obj.metadata.name, "")  # type: ignore[attr-defined]
        for group in fetched.groups
        for obj in group.objects
    ]
    if not targets:
        ctx.warn(no_resources_message(ctx, [info for info, _ in refs]))
    return targets


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    grace = _grace(args)
    try:
        timeout = parse_duration(args.timeout)
    except DurationError as exc:
        raise CLIError(f'invalid argument "{args.timeout}" for "--timeout" flag: {exc}', EXIT_USAGE) from None
    ignore_missing = args.ignore_not_found or args.all
    targets = await _targets(ctx, args)
    if grace == 0:
        ctx.warn(
            "Warning: Immediate deletion does not wait for confirmation that the running resource has been "
            "terminated. The resource may continue to run on the cluster indefinitely."
        )
    client = ctx.client()
    failed = False
    pending: list[tuple[KindInfo, Message]] = []
    for info, namespace, name, source in targets:
        try:
            deleted, removed = await client.delete(
                info, name, namespace, grace_period_seconds=grace, propagation_policy=_CASCADE[args.cascade]
            )
        except NotFoundError as exc:
            if not ignore_missing:
                ctx.warn(describe_api_error(exc, f'error when deleting "{source}"' if source else ""))
                failed = True
            continue
        except APIStatusError as exc:
            ctx.warn(describe_api_error(exc, f'error when deleting "{source}"' if source else ""))
            failed = True
            continue
        if args.output == "name":
            ctx.print(f"{printers.kind_label(info)}/{name}")
        else:
            ctx.print(_deleted_message(info, name, forced=grace == 0))
        if not removed:
            pending.append((info, deleted))
    if args.wait:
        for info, obj in pending:
            await wait_gone(client, info, obj, timeout)
    return EXIT_FAILURE if failed else EXIT_OK
