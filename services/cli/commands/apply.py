"""`pinctl apply -f`: create what is absent, three-way patch what exists (the last applied
configuration in the kubectl.kubernetes.io/last-applied-configuration annotation decides
what the manifest may remove), and say `created`, `configured` or `unchanged` per object."""

from __future__ import annotations

import argparse

from google.protobuf.message import Message

from services.cli import flags, printers
from services.cli.context import CommandContext
from services.cli.errors import EXIT_FAILURE, EXIT_OK, CLIError, describe_api_error
from services.cli.manifests import Item, load_items
from services.cli.threeway import LAST_APPLIED, last_applied_text, original_of, three_way_patch
from services.client.client import Client
from services.client.errors import AlreadyExistsError, APIStatusError, ConflictError, NotFoundError
from services.machinery import codec

_RETRIES = 5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("apply", help="create or update objects from manifests (three-way merge)")
    flags.add_filenames(parser, required=True, what="apply")
    flags.add_namespace(parser)
    parser.add_argument("-o", "--output", choices=("name",), help="print only kind/name of each object")
    parser.set_defaults(handler=run)


def with_last_applied(obj: Message) -> Message:
    """A copy of obj carrying its own last-applied annotation (also `create --save-config`)."""
    copy = type(obj)()
    copy.CopyFrom(obj)
    copy.metadata.annotations[LAST_APPLIED] = last_applied_text(obj)  # type: ignore[attr-defined]
    return copy


async def apply_item(ctx: CommandContext, client: Client, item: Item) -> str:
    """`created`, `configured` or `unchanged`; API errors propagate."""
    if not item.name:
        raise CLIError(f"from {item.source}: cannot use generate name with apply")
    desired = with_last_applied(item.obj)
    modified = codec.encode_object(desired)
    for _ in range(_RETRIES):
        try:
            current = await client.get(item.info, item.name, item.namespace)
        except NotFoundError:
            try:
                await client.create(desired)
            except AlreadyExistsError:
                continue
            return "created"
        original = original_of(current)
        if original is None:
            ctx.warn(
                f"Warning: resource {item.info.plural}/{item.name} is missing the {LAST_APPLIED} annotation "
                "which is required by pinctl apply. pinctl apply should only be used on resources created "
                "declaratively by either pinctl create --save-config or pinctl apply. The missing "
                "annotation will be patched automatically."
            )
        patch = three_way_patch(original, modified, codec.encode_object(current))
        if not patch:
            return "unchanged"
        version = current.metadata.resource_version  # type: ignore[attr-defined]
        patch.setdefault("metadata", {})["resourceVersion"] = version
        try:
            await client.patch(item.info, item.name, patch, item.namespace)
        except ConflictError:
            continue
        return "configured"
    raise CLIError(f"{printers.name_of(item.obj)} kept changing while it was being applied; try again")


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    items = load_items(
        args.filename,
        recursive=args.recursive,
        namespace=ctx.namespace,
        explicit_namespace=bool(args.namespace),
        verb="apply",
    )
    client = ctx.client()
    failed = False
    for item in items:
        try:
            action = await apply_item(ctx, client, item)
        except APIStatusError as exc:
            ctx.warn(describe_api_error(exc, f'error when applying "{item.source}"'))
            failed = True
            continue
        name = printers.name_of(item.obj)
        ctx.print(name if args.output == "name" else f"{name} {action}")
    return EXIT_FAILURE if failed else EXIT_OK
