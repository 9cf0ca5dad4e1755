"""`pinctl get`: objects as kubectl's tables, wide tables, names, YAML, JSON or JSONPath, and
with -w the rows of every change as the watch delivers it."""

from __future__ import annotations

import argparse
import datetime as dt

from google.protobuf.message import Message

from services.cli import flags, jsonpath, printers, tables
from services.cli.context import CommandContext
from services.cli.errors import EXIT_FAILURE, EXIT_OK, CLIError, describe_api_error
from services.cli.fetch import Fetched, Group, fetch, namespace_for, no_resources_message
from services.cli.resources import Ref, parse_refs
from services.machinery.kinds import KindInfo

_OUTPUTS = ("wide", "yaml", "json", "name")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "get",
        help="display one or many resources",
        description="TYPE[,TYPE...] [NAME...] | TYPE/NAME... | all",
    )
    parser.add_argument("resources", nargs="*", metavar="RESOURCE", help="TYPE [NAME...], TYPE/NAME..., all")
    parser.add_argument(
        "-o", "--output", default="", help="wide, yaml, json, name or jsonpath=TEMPLATE (default: a table)"
    )
    flags.add_namespace(parser, all_namespaces=True)
    flags.add_selectors(parser)
    parser.add_argument("-w", "--watch", action="store_true", help="after listing, print every change")
    parser.add_argument(
        "--watch-only", action="store_true", help="print changes only, not the current objects"
    )
    parser.add_argument(
        "--output-watch-events", action="store_true", help="with --watch: an EVENT column (ADDED, ...)"
    )
    parser.add_argument("--show-labels", action="store_true", help="a LABELS column")
    parser.add_argument(
        "-L", "--label-columns", action="append", default=[], help="a column per label key (repeatable)"
    )
    parser.add_argument("--no-headers", action="store_true", help="tables without their header line")
    parser.add_argument(
        "--ignore-not-found", action="store_true", help="a named object that does not exist is no error"
    )
    parser.set_defaults(handler=run)


def check_output(output: str) -> None:
    if not output or output in _OUTPUTS or output.startswith("jsonpath="):
        return
    allowed = ", ".join((*_OUTPUTS, "jsonpath"))
    raise CLIError(
        f'unable to match a printer suitable for the output format "{output}", allowed formats are: {allowed}'
    )


def _table_options(args: argparse.Namespace, ctx: CommandContext, prefix: str) -> tables.TableOptions:
    return tables.TableOptions(
        wide=args.output == "wide",
        namespace_column=ctx.all_namespaces,
        show_labels=args.show_labels,
        label_columns=tuple(k for keys in args.label_columns for k in keys.split(",") if k),
        kind_prefix=prefix,
    )


def _single_object(refs: list[Ref]) -> bool:
    return len(refs) == 1 and bool(refs[0][1])


class Output:
    """Prints objects in the chosen form; tables keep their widths across calls (watch)."""

    def __init__(self, ctx: CommandContext, args: argparse.Namespace, *, with_kind: bool) -> None:
        self.ctx = ctx
        self.args = args
        self.with_kind = with_kind
        self.tables: dict[KindInfo, printers.StreamTable] = {}
        self.now = dt.datetime.now(dt.UTC)

    def is_table(self) -> bool:
        return self.args.output in ("", "wide")

    def table(
        self, info: KindInfo, objects: list[Message], event: str = "", *, separate: bool = False
    ) -> None:
        prefix = printers.kind_label(info) + "/" if self.with_kind else ""
        options = _table_options(self.args, self.ctx, prefix)
        rows = [tables.row(info, o, options, self.now) for o in objects]
        if self.args.output_watch_events:
            rows = [[event or "", *r] for r in rows]
        stream = self.tables.get(info)
        if stream is None:
            stream = self.tables[info] = printers.StreamTable()
            if not self.args.no_headers:
                head = tables.header(info, options)
                rows.insert(0, ["EVENT", *head] if self.args.output_watch_events else head)
            if separate:
                self.ctx.out.write("\n")
        self.ctx.out.write(stream.render(rows))
        self.ctx.out.flush()

    def objects(self, objects: list[Message], *, single: bool) -> None:
        output = self.args.output
        if output == "name":
            for obj in objects:
                self.ctx.print(printers.name_of(obj))
        elif output.startswith("jsonpath="):
            data = printers.encode(objects[0]) if single and len(objects) == 1 else printers.as_list(objects)
            self.ctx.out.write(jsonpath.render(output.removeprefix("jsonpath="), data))
        else:
            self.ctx.out.write(printers.format_objects(objects, output, single=single))
        self.ctx.out.flush()

    def event(self, info: KindInfo, kind: str, obj: Message) -> None:
        self.now = dt.datetime.now(dt.UTC)
        if self.is_table():
            self.table(info, [obj], kind)
        elif self.args.output in ("yaml", "json"):
            text = printers.dump(printers.encode(obj), self.args.output)
            self.ctx.out.write(("---\n" + text) if self.args.output == "yaml" else text)
            self.ctx.out.flush()
        else:
            self.objects([obj], single=True)


def _print_fetched(out: Output, fetched: Fetched, refs: list[Ref]) -> bool:
    """Print what was found; True if anything was printed."""
    if not out.is_table():
        if fetched.objects or out.args.output != "name":
            out.objects(fetched.objects, single=_single_object(refs) and not fetched.errors)
        return bool(fetched.objects)
    printed = False
    for group in fetched.groups:
        if group.objects:
            out.table(group.info, group.objects, separate=printed)
            printed = True
    return printed


async def _watch(
    ctx: CommandContext, args: argparse.Namespace, out: Output, group: Group, refs: list[Ref]
) -> None:
    info = group.info
    field_selector = args.field_selector
    names = [name for _, name in refs if name]
    if names:
        field_selector = f"metadata.name={names[0]}"
    version = group.resource_version
    if not version and group.objects:
        version = group.objects[-1].metadata.resource_version  # type: ignore[attr-defined]
    async for event in ctx.client().watch(
        info,
        namespace_for(ctx, info),
        label_selector=args.selector,
        field_selector=field_selector,
        resource_version=version,
    ):
        if event.type != "BOOKMARK":
            out.event(info, event.type, event.obj)


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    check_output(args.output)
    if args.output.startswith("jsonpath="):
        try:
            jsonpath.parse(args.output.removeprefix("jsonpath="))
        except jsonpath.JSONPathError as exc:
            raise CLIError(f"error parsing jsonpath {args.output.removeprefix('jsonpath=')}, {exc}") from None
    if not args.resources:
        ctx.warn(
            'You must specify the type of resource to get. Use "pinctl api-resources" for a complete list of '
            "supported resources.\n"
        )
        raise CLIError("Required resource not specified.")
    refs = parse_refs(args.resources)
    kinds = list(dict.fromkeys(info for info, _ in refs))
    watching = args.watch or args.watch_only
    if watching and (len(kinds) > 1 or len({n for _, n in refs}) > 1):
        raise CLIError(
            "you may only specify a single resource type"
            if len(kinds) > 1
            else "watch is only supported on individual resources and resource collections, "
            f"but {len(refs)} resources were found"
        )
    fetched = await fetch(
        ctx,
        refs,
        label_selector=args.selector,
        field_selector=args.field_selector,
        ignore_not_found=args.ignore_not_found,
    )
    out = Output(ctx, args, with_kind=len(kinds) > 1)
    printed = False
    if not args.watch_only:
        printed = _print_fetched(out, fetched, refs)
    for error in fetched.errors:
        ctx.warn(describe_api_error(error))
    if out.is_table() and not printed and not fetched.errors and not watching and not any(n for _, n in refs):
        ctx.warn(no_resources_message(ctx, kinds))
    if watching:
        if fetched.errors:
            return EXIT_FAILURE
        await _watch(ctx, args, out, fetched.groups[0], refs)
    return EXIT_FAILURE if fetched.errors else EXIT_OK
