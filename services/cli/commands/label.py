"""`pinctl label` and `pinctl annotate` (TYPE NAME | TYPE/NAME | -f FILE | TYPE -l SEL |
TYPE --all) KEY=VALUE... KEY-...: update labels or annotations, refusing to change an
existing value without --overwrite."""

from __future__ import annotations

import argparse

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.ops import metadata, targets
from services.cli.printers import kind_label
from services.cli.workload_cli import add_dry_run, add_output, kubectl_style, report


def _add(sub: argparse._SubParsersAction[argparse.ArgumentParser], what: str) -> None:
    parser = sub.add_parser("label" if what == "label" else "annotate", help=f"update the {what}s of objects")
    parser.add_argument(
        "arguments",
        nargs="*",
        metavar="ARG",
        help="TYPE NAME... or TYPE/NAME..., then KEY=VALUE... and KEY-...",
    )
    parser.add_argument("--overwrite", action="store_true", help=f"allow changing a {what} that has a value")
    parser.add_argument("--all", action="store_true", help="every object of the type in the namespace")
    parser.add_argument(
        "--resource-version", default="", help="change the object only if it is still at this resourceVersion"
    )
    parser.add_argument("--list", action="store_true", help=f"print the {what}s of the objects instead")
    flags.add_namespace(parser)
    flags.add_selectors(parser, fields=False)
    flags.add_filenames(parser, what="update")
    add_dry_run(parser)
    add_output(parser)
    kubectl_style(parser)
    parser.set_defaults(handler=run, what=what)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add(sub, "label")
    _add(sub, "annotation")


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    resources, pairs = metadata.split_arguments(args.arguments, args.what)
    if not resources and not args.filename:
        raise CLIError(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>", EXIT_USAGE
        )
    if not pairs and not args.list:
        raise CLIError(f"at least one {args.what} update is required", EXIT_USAGE)
    updates = metadata.parse_labels(pairs) if args.what == "label" else metadata.parse_annotations(pairs)
    found = await targets.resolve(
        ctx.client(),
        resources,
        ctx.namespace,
        selector=args.selector,
        select_all=args.all,
        filenames=args.filename,
        recursive=args.recursive,
    )
    if args.resource_version and len(found) > 1:
        raise CLIError("--resource-version may only be used with a single resource", EXIT_USAGE)
    for target in found:
        if args.list:
            obj = await ctx.client().get(target.info, target.name, target.namespace)
            meta = obj.metadata  # type: ignore[attr-defined]
            values = meta.labels if args.what == "label" else meta.annotations
            ctx.print(f"Listing {args.what}s for {kind_label(target.info)}/{target.name}:")
            for key, value in sorted(values.items()):
                ctx.print(f" {key}={value}")
            continue
        obj, outcome = await metadata.apply(
            ctx.client(),
            target.info,
            target.name,
            target.namespace,
            updates,
            overwrite=args.overwrite,
            resource_version=args.resource_version,
            dry_run=args.dry_run == "server",
            local=args.dry_run == "client",
        )
        for key in outcome.missing:
            ctx.print(f'{args.what} "{key}" not found.')
        report(ctx, obj, outcome.operation, args.output, args.dry_run)
    return 0
