"""What the workload commands share on the command line: flag types (Go durations such as
`--timeout=5m`, kubectl's booleans such as `--watch=false`, `--dry-run[=none|client|server]`,
`-o yaml|json|name`) and the report of an object they changed (`pod/web created`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from google.protobuf.message import Message

from services.cli.context import CommandContext
from services.cli.ops.duration import DurationError, parse_duration
from services.cli.printers import dump, encode, name_of

DRY_RUN_CHOICES = ("none", "client", "server")


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "t"):
        return True
    if lowered in ("false", "0", "f"):
        return False
    raise argparse.ArgumentTypeError(f'invalid argument "{text}": want true or false')


def _dry_run(text: str) -> str:
    lowered = text.lower()
    if lowered in DRY_RUN_CHOICES:
        return lowered
    # kubectl still accepts the old boolean spelling.
    if lowered in ("true", "false"):
        return "client" if lowered == "true" else "none"
    raise argparse.ArgumentTypeError(
        f'Invalid dry-run value ({text}). Must be "none", "server", or "client".'
    )


def add_dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run",
        type=_dry_run,
        nargs="?",
        const="client",
        default="none",
        help="client: only print what would be sent; server: send it as a dry run; none (default)",
    )


def add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", default="", choices=("", "yaml", "json", "name"), help="yaml, json or name"
    )


def report(
    ctx: CommandContext, obj: Message, operation: str, output: str = "", dry_run: str = "none"
) -> None:
    """The object as -o asks, else kubectl's `kind/name operation` line, marked for dry runs."""
    if output in ("yaml", "json"):
        ctx.out.write(dump(encode(obj), output))
        ctx.out.flush()
        return
    if output == "name":
        ctx.print(name_of(obj))
        return
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
    ctx.print(f"{name_of(obj)} {operation}{suffix}")


def kubectl_style(parser: argparse.ArgumentParser, rest: str = "") -> None:
    """Parse a (leaf) subcommand the way kubectl's flag library does: flags and positional
    words interleave freely (`pinctl label pods -l app=web seen=yes`), and with `rest` every
    word after `--` lands untouched in args.<rest> (`pinctl run web --image=x -- sh -c 'echo
    hi'`). argparse alone stops filling a list positional at the first flag."""
    plain = parser.parse_known_args
    inside = False

    def parse_known_args(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        nonlocal inside
        if inside:  # parse_known_intermixed_args calls back into parse_known_args
            return plain(args, namespace)
        words = list(args or [])
        tail: list[str] = []
        if rest and "--" in words:
            cut = words.index("--")
            words, tail = words[:cut], words[cut + 1 :]
        inside = True
        try:
            parsed, extras = parser.parse_known_intermixed_args(words, namespace)
        finally:
            inside = False
        if rest:
            setattr(parsed, rest, tail)
        return parsed, extras

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign,assignment]
