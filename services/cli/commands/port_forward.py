"""`pinctl port-forward POD [LOCAL:]REMOTE... [--address localhost]`: listen on local ports and
relay every connection to the pod's ports through the apiserver's pods/portforward proxy, as
`kubectl port-forward` does (`8080`, `8080:80`, `:80` for any free local port, a named container
port such as `8080:http`); runs until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from pinnace.api.core.v1 import core_pb2
from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.pod_streams import get_pod
from services.client.streams import PortForwarder


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("port-forward", help="forward local ports to a pod")
    parser.add_argument("pod", metavar="POD", help="NAME or pod/NAME")
    parser.add_argument("ports", nargs="+", metavar="[LOCAL:]REMOTE", help="8080, 8080:80, :80, 8080:http")
    parser.add_argument(
        "--address",
        default="localhost",
        help="comma-separated addresses to listen on (localhost means 127.0.0.1)",
    )
    flags.add_namespace(parser)
    parser.set_defaults(handler=run)


def _number(text: str, what: str, allow_zero: bool) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CLIError(f"Error parsing {what} port '{text}': not a number", EXIT_USAGE) from None
    if not (0 if allow_zero else 1) <= value <= 65535:
        raise CLIError(f"Error parsing {what} port '{text}': out of range 1-65535", EXIT_USAGE)
    return value


def _named_port(pod: core_pb2.Pod, name: str) -> int:
    for container in pod.spec.containers:
        for port in container.ports:
            if port.name == name:
                return port.container_port
    raise CLIError(f"Pod '{pod.metadata.name}' does not have a named port '{name}'")


def parse_ports(pod: core_pb2.Pod, specs: list[str]) -> list[tuple[int, int]]:
    """(local, remote) for each spec; local 0 means any free port."""
    pairs = []
    for spec in specs:
        local_text, colon, remote_text = spec.rpartition(":")
        if not colon:
            local_text = remote_text
        if remote_text and not remote_text.isdigit():
            remote = _named_port(pod, remote_text)
            local_text = local_text if colon else str(remote)
        else:
            remote = _number(remote_text, "remote", allow_zero=False)
        local = _number(local_text, "local", allow_zero=True) if local_text else 0
        pairs.append((local, remote))
    return pairs


def _addresses(text: str) -> list[str]:
    addresses = [a.strip() for a in text.split(",") if a.strip()]
    if not addresses:
        raise CLIError("--address needs at least one address", EXIT_USAGE)
    return ["127.0.0.1" if a == "localhost" else a for a in addresses]


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    addresses = _addresses(args.address)
    pod = await get_pod(ctx, args.pod)
    pairs = parse_ports(pod, args.ports)
    if pod.status.phase != "Running":
        phase = pod.status.phase or "Pending"
        raise CLIError(f"unable to forward port because pod is not running. Current status={phase}")
    proxy = ctx.client().node_proxy
    forwarders: list[PortForwarder] = []
    try:
        for address in addresses:
            try:
                forwarder = await proxy.port_forward(
                    pod.metadata.name,
                    pairs,
                    pod.metadata.namespace,
                    address=address,
                    on_connection=lambda local: ctx.print(f"Handling connection for {local}"),
                    on_error=lambda local, exc: ctx.warn(f"an error occurred forwarding {local}: {exc}"),
                )
            except OSError as exc:
                raise CLIError(f"unable to listen on {address}: {exc}") from None
            forwarders.append(forwarder)
            for local, remote in forwarder.ports:
                host = f"[{address}]" if ":" in address else address
                ctx.print(f"Forwarding from {host}:{local} -> {remote}")
        await _until_interrupted()
    finally:
        for forwarder in forwarders:
            await forwarder.close()
    return 0


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError):  # not the main thread: cancellation only
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
