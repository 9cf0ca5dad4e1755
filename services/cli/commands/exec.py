"""`pinctl exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...]`: run a command in a
container through the apiserver's pods/exec proxy. -i sends stdin (its EOF closes the command's
stdin); -t asks for a terminal and, when stdin is one, puts it in raw mode and follows its size.
The exit code is the command's, with kubectl's `command terminated with exit code N`."""

from __future__ import annotations

import argparse
from typing import NoReturn

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.pod_streams import choose_container, get_pod, run_session, wants_terminal

DEPRECATED_FORM = (
    "pinctl exec [POD] [COMMAND] is DEPRECATED and will be removed in a future version. "
    "Use pinctl exec [POD] -- [COMMAND] instead."
)


def _add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--container", default="", help="container name (default: the only/first one)")
    parser.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a terminal for the command")
    flags.add_namespace(parser)


class _FlagParser(argparse.ArgumentParser):
    """Reads the flags that follow POD; a malformed one is a usage error, not an exit."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(message, EXIT_USAGE)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("exec", help="run a command in a container")
    # One REMAINDER for POD and what follows it: argparse keeps a `--` there (it drops one that
    # directly follows a positional), which is what tells the command from the flags.
    parser.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="POD [FLAGS] -- COMMAND [ARG...]",
        help="POD: NAME or pod/NAME",
    )
    _add_flags(parser)
    parser.set_defaults(handler=run)


def split_command(ctx: CommandContext, args: argparse.Namespace) -> list[str]:
    """Set `args.pod` and return the command after `--`, reading the flags written between
    POD and `--` into `args`. Without `--` (kubectl's deprecated form) flags are read wherever
    they are, as cobra does."""
    if not args.rest or args.rest[0].startswith("-"):
        raise CLIError("expected 'exec POD -- COMMAND [ARG...]'; POD is a required argument", EXIT_USAGE)
    args.pod, rest = args.rest[0], args.rest[1:]
    flag_parser = _FlagParser(prog="pinctl exec", add_help=False)
    _add_flags(flag_parser)
    for action in flag_parser._actions:
        action.default = argparse.SUPPRESS  # keep what was parsed before POD
    if "--" in rest:
        cut = rest.index("--")
        _, unexpected = flag_parser.parse_known_args(rest[:cut], namespace=args)
        if unexpected:
            raise CLIError(f"unexpected arguments before --: {' '.join(unexpected)}", EXIT_USAGE)
        return list(rest[cut + 1 :])
    _, command = flag_parser.parse_known_args(rest, namespace=args)
    if command:
        ctx.warn(DEPRECATED_FORM)
    return command


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    command = split_command(ctx, args)
    if not command:
        raise CLIError("you must specify at least one command for the container", EXIT_USAGE)
    pod = await get_pod(ctx, args.pod)
    if pod.status.phase in ("Succeeded", "Failed"):
        raise CLIError(
            f"cannot exec into a container in a completed pod; current phase is {pod.status.phase}"
        )
    container = choose_container(ctx, pod, args.container)
    tty = wants_terminal(ctx, args.tty, args.stdin)
    session = await ctx.client().node_proxy.exec(
        pod.metadata.name, command, pod.metadata.namespace, container=container, stdin=args.stdin, tty=tty
    )
    await run_session(ctx, session, stdin=args.stdin, raw=tty)
    if session.error:
        raise CLIError(session.error)
    code = session.exit_code if session.exit_code is not None else 1
    if code != 0:
        ctx.warn(f"command terminated with exit code {code}")
    return code
