"""`pinctl describe TYPE [NAME_PREFIX...]`: kubectl's human description of objects with their
related objects and events. A name that matches no object exactly describes every object
whose name starts with it, as kubectl does."""

from __future__ import annotations

import argparse
import datetime as dt

from google.protobuf.message import Message

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.describers import describe
from services.cli.errors import EXIT_FAILURE, EXIT_OK, CLIError, describe_api_error
from services.cli.fetch import check_selectors, namespace_for, no_resources_message
from services.cli.resources import parse_refs
from services.client.errors import APIStatusError, NotFoundError
from services.machinery.kinds import KindInfo


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")
    return text.lower() == "true"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("describe", help="show details of objects and their events")
    parser.add_argument(
        "resources", nargs="*", metavar="RESOURCE", help="TYPE [NAME_PREFIX...] or TYPE/NAME..."
    )
    flags.add_namespace(parser, all_namespaces=True)
    flags.add_selectors(parser)
    parser.add_argument(
        "--show-events",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="end with the Events table (default true)",
    )
    parser.set_defaults(handler=run)


async def _named(ctx: CommandContext, info: KindInfo, name: str) -> list[Message]:
    """The object called `name`, else every object whose name starts with it."""
    client = ctx.client()
    namespace = namespace_for(ctx, info)
    try:
        return [await client.get(info, name, namespace)]
    except NotFoundError as exc:
        listed = await client.list_all(info, namespace)
        matches = [o for o in listed.items if o.metadata.name.startswith(name)]  # type: ignore[attr-defined]
        if not matches:
            raise exc from None
        return matches


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    if not args.resources:
        raise CLIError(
            'You must specify the type of resource to describe. Use "pinctl api-resources" for a complete '
            "list of supported resources."
        )
    refs = parse_refs(args.resources)
    check_selectors(refs, args.selector, args.field_selector, ctx.all_namespaces)
    client = ctx.client()
    found: list[tuple[KindInfo, Message]] = []
    failed = False
    for info, name in refs:
        if name:
            try:
                found.extend((info, o) for o in await _named(ctx, info, name))
            except APIStatusError as exc:
                ctx.warn(describe_api_error(exc))
                failed = True
            continue
        listed = await client.list_all(
            info, namespace_for(ctx, info), label_selector=args.selector, field_selector=args.field_selector
        )
        found.extend((info, o) for o in listed.items)
    now = dt.datetime.now(dt.UTC)
    for index, (info, obj) in enumerate(found):
        text = await describe(client, info, obj, now, events=args.show_events)
        ctx.out.write(text if index == 0 else "\n\n" + text)
    ctx.out.flush()
    if not found and not failed:
        ctx.warn(no_resources_message(ctx, [info for info, _ in refs]))
    return EXIT_FAILURE if failed else EXIT_OK
