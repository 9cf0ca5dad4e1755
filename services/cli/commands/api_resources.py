"""`pinctl api-resources`: the kinds the server serves, as kubectl lists them (NAME SHORTNAMES
APIVERSION NAMESPACED KIND), from the same registry the apiserver routes by."""

from __future__ import annotations

import argparse

from services.cli import printers
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.resources import ALL_CATEGORY
from services.machinery.kinds import REGISTRY, KindInfo

# The verbs every stored kind is served with (pinnace has no deletecollection).
VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("api-resources", help="list the resource types the server serves")
    parser.add_argument(
        "--namespaced", choices=("true", "false"), help="only namespaced (true) or cluster kinds"
    )
    parser.add_argument("--api-group", default=None, help="only this API group ('' for the core group)")
    parser.add_argument("-o", "--output", choices=("wide", "name"), help="wide adds VERBS and CATEGORIES")
    parser.add_argument("--no-headers", action="store_true", help="no header line")
    parser.add_argument("--sort-by", choices=("name", "kind"), help="sort by name or kind")
    parser.set_defaults(handler=run)


def served_kinds() -> list[KindInfo]:
    """Core kinds first, then each group in the registry's order; names sorted in a group."""
    groups = list(dict.fromkeys(k.group for k in REGISTRY.stored()))
    groups.sort(key=lambda g: g != "")
    return [
        k
        for g in groups
        for k in sorted((k for k in REGISTRY.stored() if k.group == g), key=lambda k: k.plural)
    ]


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    kinds = served_kinds()
    if args.namespaced is not None:
        kinds = [k for k in kinds if k.namespaced == (args.namespaced == "true")]
    if args.api_group is not None:
        kinds = [k for k in kinds if k.group == args.api_group]
    if args.sort_by:
        kinds.sort(key=lambda k: k.plural if args.sort_by == "name" else k.kind)
    if args.output == "name":
        for kind in kinds:
            ctx.print(kind.resource)
        return 0
    if args.output not in (None, "wide"):
        raise CLIError(f"--output {args.output} is not available", EXIT_USAGE)
    header = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    if args.output == "wide":
        header += ["VERBS", "CATEGORIES"]
    rows = [] if args.no_headers else [header]
    for kind in kinds:
        row = [
            kind.plural,
            ",".join(kind.short_names),
            kind.api_version,
            str(kind.namespaced).lower(),
            kind.kind,
        ]
        if args.output == "wide":
            row += [f"[{' '.join(VERBS)}]", "all" if kind.plural in ALL_CATEGORY else ""]
        rows.append(row)
    ctx.out.write(printers.render_table(rows))
    return 0
