"""pinnace token: bootstrap tokens for joining nodes, as `kubeadm token` manages them
(Secrets kube-system/bootstrap-token-<id> of type bootstrap.kubernetes.io/token).

    pinnace token create [TOKEN] [--ttl 24h] [--description TEXT] [--print-join-token]
    pinnace token list
    pinnace token delete TOKEN|ID [...]
    pinnace token generate
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from typing import TextIO

from pinnace.api.core.v1 import core_pb2
from pinnace_cmd.controller_manager import duration
from services.cli.context import config_path
from services.client import errors, jointoken
from services.client.client import Client
from services.client.config import ConfigError, load

DEFAULT_TTL = 24 * 3600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default="", help="client configuration (default: as pinctl finds it)")
    sub = parser.add_subparsers(dest="token_command", required=True)
    create = sub.add_parser("create", parents=[common], help="create a bootstrap token and print it")
    create.add_argument("token", nargs="?", default="", help="the token to create (default: a random one)")
    create.add_argument(
        "--ttl",
        type=duration,
        default=DEFAULT_TTL,
        help="lifetime, e.g. 24h, 30m; 0 never expires (default 24h)",
    )
    create.add_argument("--description", default="", help="a human-readable note stored with the token")
    create.add_argument(
        "--groups",
        default=",".join(jointoken.DEFAULT_GROUPS),
        help="extra groups of the token (each system:bootstrappers:...), comma-separated",
    )
    create.add_argument(
        "--print-join-token",
        action="store_true",
        help="print the node join token K10<sha256 of the cluster CA>::<token> instead of the token",
    )
    sub.add_parser("list", parents=[common], help="list the bootstrap tokens")
    delete = sub.add_parser("delete", parents=[common], help="delete bootstrap tokens")
    delete.add_argument("tokens", nargs="+", metavar="TOKEN|ID", help="a token or its 6-character id")
    sub.add_parser("generate", help="print a random token without creating it")


async def create(
    client: Client, out: TextIO, token: jointoken.BootstrapToken, args: argparse.Namespace, ca_pem: bytes
) -> None:
    groups = [g for g in args.groups.split(",") if g]
    ttl = int(args.ttl) or None
    await client.create(
        jointoken.token_secret(token, ttl_seconds=ttl, groups=groups, description=args.description)
    )
    out.write((jointoken.format_join_token(ca_pem, token) if args.print_join_token else str(token)) + "\n")


def _ttl(record: jointoken.TokenRecord, now: dt.datetime) -> str:
    if record.expiration is None:
        return "<forever>"
    left = int((record.expiration - now).total_seconds())
    if left <= 0:
        return "<invalid>"
    hours, rest = divmod(left, 3600)
    return f"{hours}h" if hours else f"{rest // 60}m"


async def list_tokens(client: Client, out: TextIO) -> None:
    listed = await client.list(
        "secrets", jointoken.TOKEN_NAMESPACE, field_selector=f"type={jointoken.TOKEN_SECRET_TYPE}"
    )
    now = dt.datetime.now(dt.UTC)
    rows = [("TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")]
    for secret in listed.items:
        assert isinstance(secret, core_pb2.Secret)
        try:
            record = jointoken.read_token_secret(secret)
        except ValueError as exc:
            print(f"warning: {exc}", file=sys.stderr)
            continue
        expires = jointoken.rfc3339(record.expiration) if record.expiration else "<never>"
        usages = ",".join(record.usages) or "<none>"
        groups = ",".join(record.groups) or "<none>"
        rows.append(
            (str(record.token), _ttl(record, now), expires, usages, record.description or "<none>", groups)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write(
            "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )


def token_id(text: str) -> str:
    """The id of `abcdef.0123456789abcdef` or of `abcdef`; ValueError otherwise."""
    if "." in text:
        return jointoken.parse(text).token_id
    jointoken.BootstrapToken(text, "0" * 16)
    return text


async def delete(client: Client, out: TextIO, names: list[str]) -> None:
    for text in names:
        identifier = token_id(text)
        try:
            await client.delete(
                "secrets", jointoken.TOKEN_SECRET_PREFIX + identifier, jointoken.TOKEN_NAMESPACE
            )
        except errors.NotFoundError:
            raise ValueError(f'bootstrap token "{identifier}" not found') from None
        out.write(f'bootstrap token "{identifier}" deleted\n')


async def _run(args: argparse.Namespace, out: TextIO) -> None:
    credentials = load(config_path(args.kubeconfig))
    async with credentials.client(timeout=15) as client:
        if args.token_command == "create":
            token = jointoken.parse(args.token) if args.token else jointoken.generate()
            await create(client, out, token, args, credentials.ca_pem)
        elif args.token_command == "list":
            await list_tokens(client, out)
        else:
            await delete(client, out, args.tokens)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    if args.token_command == "generate":
        stream.write(f"{jointoken.generate()}\n")
        return 0
    try:
        asyncio.run(_run(args, stream))
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except errors.APIStatusError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace token", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
