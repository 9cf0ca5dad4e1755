"""`pinctl set image (TYPE NAME | TYPE/NAME | -f FILE | TYPE -l SEL | TYPE --all)
CONTAINER=IMAGE...`: change container images of pods or workloads' pod templates."""

from __future__ import annotations

import argparse

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.ops import targets
from services.cli.ops.metadata import split_arguments
from services.cli.ops.set_image import parse_images, set_images, update_images
from services.cli.workload_cli import add_dry_run, add_output, kubectl_style, report


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("set", help="set specific features on objects")
    verbs = parser.add_subparsers(dest="set_command", required=True, metavar="SUBCOMMAND")
    image = verbs.add_parser("image", help="update the images of pods or of workloads' pod templates")
    image.add_argument(
        "arguments", nargs="*", metavar="ARG", help="TYPE NAME... or TYPE/NAME..., then CONTAINER=IMAGE..."
    )
    image.add_argument("--all", action="store_true", help="every object of the type in the namespace")
    flags.add_namespace(image)
    flags.add_selectors(image, fields=False)
    flags.add_filenames(image, what="update")
    add_dry_run(image)
    add_output(image)
    kubectl_style(image)
    image.set_defaults(handler=run_image)


async def run_image(ctx: CommandContext, args: argparse.Namespace) -> int:
    resources, pairs = split_arguments(args.arguments, "image")
    if not resources and not args.filename:
        raise CLIError(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>", EXIT_USAGE
        )
    images = parse_images(pairs)
    found = await targets.resolve(
        ctx.client(),
        resources,
        ctx.namespace,
        selector=args.selector,
        select_all=args.all,
        filenames=args.filename,
        recursive=args.recursive,
    )
    for target in found:
        if args.dry_run == "client":
            obj = await ctx.client().get(target.info, target.name, target.namespace)
            set_images(obj, images)
        else:
            obj = await update_images(
                ctx.client(),
                target.info,
                target.name,
                target.namespace,
                images,
                dry_run=args.dry_run == "server",
            )
        report(ctx, obj, "image updated", args.output, args.dry_run)
    return 0
