"""`pinctl exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...]`: run a command in a
container through the apiserver's pods/exec proxy. -i sends stdin (its EOF closes the command's
stdin); -t asks for a terminal and, when stdin is one, puts it in raw mode and follows its size.
The exit code is the command's, with kubectl's `command terminated with exit code N`."""

from __future__ import annotations

import argparse

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.pod_streams import choose_container, get_pod, run_session, wants_terminal


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("exec", help="run a command in a container")
    parser.add_argument("pod", metavar="POD", help="NAME or pod/NAME")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")
    parser.add_argument("-c", "--container", default="", help="container name (default: the only/first one)")
    parser.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a terminal for the command")
    flags.add_namespace(parser)
    parser.set_defaults(handler=run)


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
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
