"""`pinctl create -f` (objects from manifests) and `pinctl create namespace NAME`."""

from __future__ import annotations

import argparse

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.cli import flags, printers
from services.cli.commands.apply import with_last_applied
from services.cli.context import CommandContext
from services.cli.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CLIError, describe_api_error
from services.cli.manifests import load_items
from services.client.errors import APIStatusError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("create", help="create objects from manifests, or a namespace")
    flags.add_filenames(parser, what="create")
    flags.add_namespace(parser)
    parser.add_argument(
        "--save-config", action="store_true", help="record the manifest as apply's last-applied configuration"
    )
    parser.add_argument("-o", "--output", choices=("name", "yaml", "json"), help="print the created objects")
    parser.add_argument("--dry-run", choices=("none", "server"), default="none", help="server: validate only")
    kinds = parser.add_subparsers(dest="create_kind", metavar="KIND")
    namespace = kinds.add_parser("namespace", aliases=["ns"], help="create a namespace")
    namespace.add_argument("name")
    parser.set_defaults(handler=run)


def _report(ctx: CommandContext, args: argparse.Namespace, obj: Message) -> None:
    if args.output in ("yaml", "json"):
        ctx.out.write(printers.dump(printers.encode(obj), args.output))
        return
    name = printers.name_of(obj)
    suffix = " (server dry run)" if args.dry_run == "server" else ""
    ctx.print(name if args.output == "name" else f"{name} created{suffix}")


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    dry_run = args.dry_run == "server"
    if args.create_kind in ("namespace", "ns"):
        if args.filename:
            raise CLIError("-f cannot be combined with a kind to create", EXIT_USAGE)
        namespace = core_pb2.Namespace()
        namespace.metadata.name = args.name
        _report(ctx, args, await ctx.client().create(namespace, dry_run=dry_run))
        return EXIT_OK
    if not args.filename:
        raise CLIError("must specify one of -f and -k", EXIT_USAGE)
    items = load_items(
        args.filename,
        recursive=args.recursive,
        namespace=ctx.namespace,
        explicit_namespace=bool(args.namespace),
    )
    client = ctx.client()
    failed = False
    for item in items:
        obj = with_last_applied(item.obj) if args.save_config else item.obj
        try:
            created = await client.create(obj, dry_run=dry_run)
        except APIStatusError as exc:
            ctx.warn(describe_api_error(exc, f'error when creating "{item.source}"'))
            failed = True
            continue
        _report(ctx, args, created)
    return EXIT_FAILURE if failed else EXIT_OK
