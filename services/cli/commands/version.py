"""`pinctl version [--client] [-o yaml|json]`: the client's version and, unless --client, the
server's, as the apiserver's Version call reports it (Kubernetes' /version)."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
from typing import Any

from services.cli import printers
from services.cli.context import CommandContext


def client_version() -> dict[str, str]:
    return {
        "gitVersion": f"v{importlib.metadata.version('pinnace')}",
        "platform": f"{platform.system().lower()}/{platform.machine()}",
        "pythonVersion": platform.python_version(),
    }


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("version", help="print the client and server versions")
    parser.add_argument("--client", action="store_true", help="only the client version; no server contact")
    parser.add_argument("-o", "--output", choices=("yaml", "json"), help="print the versions as YAML or JSON")
    parser.set_defaults(handler=run)


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    document: dict[str, Any] = {"clientVersion": client_version()}
    if not args.output:
        ctx.print(f"Client Version: {document['clientVersion']['gitVersion']}")
    if not args.client:
        info = await ctx.client().version()
        document["serverVersion"] = {
            "gitVersion": info.git_version,
            "platform": info.platform,
            "pythonVersion": info.python_version,
        }
        if not args.output:
            ctx.print(f"Server Version: {info.git_version}")
    if args.output:
        ctx.out.write(printers.dump(document, args.output))
    return 0
