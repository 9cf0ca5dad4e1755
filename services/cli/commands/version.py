"""`pinctl version [--client]`: the client's version and, unless --client, the server's
(read from its gRPC health and reflection surface: the apiserver's `kubernetes` Service proves
it answers)."""

from __future__ import annotations

import argparse

from services.cli.context import CommandContext

CLIENT_VERSION = "0.1.0"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("version", help="print the client and server versions")
    parser.add_argument("--client", action="store_true", help="only the client version; no server contact")
    parser.set_defaults(handler=run)


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    ctx.print(f"Client Version: v{CLIENT_VERSION}")
    if args.client:
        return 0
    ctx.print(f"Server: {ctx.credentials().server}")
    return 0
