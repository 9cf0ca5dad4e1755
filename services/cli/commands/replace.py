"""`pinctl replace -f`: replace whole objects by their manifests (an update; with --force a
delete and a create), as kubectl replace does."""

from __future__ import annotations

import argparse

from services.cli import flags, printers
from services.cli.commands.delete import wait_gone
from services.cli.context import CommandContext
from services.cli.errors import EXIT_FAILURE, EXIT_OK, describe_api_error
from services.cli.manifests import Item, load_items
from services.client.client import Client
from services.client.errors import APIStatusError, NotFoundError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("replace", help="replace objects by their manifests")
    flags.add_filenames(parser, required=True, what="replace")
    flags.add_namespace(parser)
    parser.add_argument("--force", action="store_true", help="delete the objects, wait, and create them anew")
    parser.add_argument("-o", "--output", choices=("name",), help="print only kind/name of each object")
    parser.set_defaults(handler=run)


async def _replace(ctx: CommandContext, client: Client, item: Item, force: bool) -> str:
    if not force:
        await client.update(item.obj)
        return "replaced"
    try:
        deleted, removed = await client.delete(item.info, item.name, item.namespace)
    except NotFoundError:
        pass
    else:
        ctx.print(f'{printers.kind_label(item.info)} "{item.name}" deleted')
        if not removed:
            await wait_gone(client, item.info, deleted, timeout=0)
    await client.create(item.obj)
    return "replaced"


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    items = load_items(
        args.filename,
        recursive=args.recursive,
        namespace=ctx.namespace,
        explicit_namespace=bool(args.namespace),
        verb="replace",
    )
    client = ctx.client()
    failed = False
    for item in items:
        try:
            action = await _replace(ctx, client, item, args.force)
        except APIStatusError as exc:
            ctx.warn(describe_api_error(exc, f'error when replacing "{item.source}"'))
            failed = True
            continue
        name = printers.name_of(item.obj)
        ctx.print(name if args.output == "name" else f"{name} {action}")
    return EXIT_FAILURE if failed else EXIT_OK
