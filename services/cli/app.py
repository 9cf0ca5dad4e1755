"""pinctl's entry point: global flags, the commands found in services/cli/commands, and the
one place that turns exceptions into kubectl-like messages and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import grpc

from services.cli import commands
from services.cli.context import CommandContext
from services.cli.errors import EXIT_FAILURE, EXIT_USAGE, CLIError, describe_api_error
from services.client.errors import APIStatusError, UnavailableError

Handler = Callable[[CommandContext, argparse.Namespace], Awaitable[int]]


_GLOBAL_FLAGS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--kubeconfig",), {"default": "", "help": "client configuration file (default: see docs/cli.md)"}),
    (("--context",), {"default": "", "help": "context of the configuration file to use"}),
    (("-s", "--server"), {"default": "", "help": "API server address HOST:PORT (overrides the context's)"}),
    (
        ("--insecure-plaintext",),
        {
            "action": "store_true",
            "default": False,
            "help": "with --server: plaintext gRPC, for an apiserver started with --insecure",
        },
    ),
    (("--request-timeout",), {"type": float, "default": 30.0, "help": "seconds per API request"}),
)


def add_global_flags(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """The connection flags. Every command accepts them too (kubectl takes them anywhere);
    there they default to SUPPRESS so an absent flag keeps the value given before the command,
    and a command's own flag of the same name wins."""
    group = parser.add_argument_group("global flags")
    taken = {flag for action in parser._actions for flag in action.option_strings}
    for flags, options in _GLOBAL_FLAGS:
        if nested and any(flag in taken for flag in flags):
            continue
        group.add_argument(*flags, **({**options, "default": argparse.SUPPRESS} if nested else options))


def _add_global_flags_everywhere(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                add_global_flags(child, nested=True)
                _add_global_flags_everywhere(child)


def build_parser(prog: str = "pinctl") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="pinctl controls a pinnace cluster (like kubectl)"
    )
    add_global_flags(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(sub)
    _add_global_flags_everywhere(parser)
    parser.set_defaults(root_parser=parser)  # for `__complete`, which walks the command tree
    return parser


async def _run(handler: Handler, ctx: CommandContext, args: argparse.Namespace) -> int:
    try:
        return await handler(ctx, args)
    finally:
        await ctx.close()


def _unreachable(ctx: CommandContext, exc: UnavailableError) -> str:
    """The transport failed before any server answered: kubectl's connection messages."""
    server = ctx.credentials().server
    if "Connection refused" in exc.message:
        return f"The connection to the server {server} was refused - did you specify the right host or port?"
    return f"Unable to connect to the server {server}: {exc.message}"


async def main_async(
    argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Parse, run one command, and turn its failure into a message and an exit code; the
    entry point tests await (main() wraps it in asyncio.run)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    ctx = CommandContext(args, out=out or sys.stdout, err=err or sys.stderr)
    try:
        return await _run(args.handler, ctx, args)
    except CLIError as exc:
        ctx.warn(f"error: {exc.message}")
        return exc.exit_code
    except UnavailableError as exc:
        ctx.warn(_unreachable(ctx, exc) if exc.status.code == 0 else describe_api_error(exc))
        return EXIT_FAILURE
    except APIStatusError as exc:
        ctx.warn(describe_api_error(exc))
        return EXIT_FAILURE
    except grpc.aio.AioRpcError as exc:
        ctx.warn(
            f"error: the server at {ctx.credentials().server} answered {exc.code().name}: {exc.details()}"
        )
        return EXIT_FAILURE


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    try:
        return asyncio.run(main_async(argv, out=out, err=err))
    except KeyboardInterrupt:
        return 130
