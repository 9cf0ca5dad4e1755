"""`pinctl attach POD [-c CONTAINER] [-i] [-t]`: attach to the main process of a running
container through the apiserver's pods/attach proxy: its output from now on, and with -i our
stdin to its stdin (-t: raw terminal, as `kubectl attach -it`). Ends when the process exits."""

from __future__ import annotations

import argparse

from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import CLIError
from services.cli.pod_streams import choose_container, get_pod, run_session, wants_terminal

PROMPT_HINT = "If you don't see a command prompt, try pressing enter."


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("attach", help="attach to a running container")
    parser.add_argument("pod", metavar="POD", help="NAME or pod/NAME")
    parser.add_argument("-c", "--container", default="", help="container name (default: the only/first one)")
    parser.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the container")
    parser.add_argument("-t", "--tty", action="store_true", help="stdin is a terminal")
    flags.add_namespace(parser)
    parser.set_defaults(handler=run)


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    pod = await get_pod(ctx, args.pod)
    if pod.status.phase in ("Succeeded", "Failed"):
        raise CLIError(f"cannot attach a container in a completed pod; current phase is {pod.status.phase}")
    container = choose_container(ctx, pod, args.container)
    tty = wants_terminal(ctx, args.tty, args.stdin)
    session = await ctx.client().node_proxy.attach(
        pod.metadata.name, pod.metadata.namespace, container=container, stdin=args.stdin, tty=tty
    )
    if tty:
        ctx.warn(PROMPT_HINT)
    await run_session(ctx, session, stdin=args.stdin, raw=tty)
    if session.error:
        raise CLIError(session.error)
    return 0
