"""What `pinctl logs/exec/attach/port-forward` share: naming the pod (`NAME` or `pod/NAME`),
kubectl's choice of container when none is named, binary output to the user's streams, the
user's stdin as chunks, and the terminal in raw mode for `-t`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import stat
import sys
import termios
import tty
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TextIO

from pinnace.api.core.v1 import core_pb2
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.resources import resolve
from services.client.streams import CommandSession

CHUNK_BYTES = 32 * 1024
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
NO_TTY = "Unable to use a TTY - input is not a terminal or the right kind of file"


def pod_name(token: str) -> str:
    """`NAME` or `TYPE/NAME` where TYPE names pods (`pod/web`, `po/web`, `pods/web`)."""
    kind, slash, name = token.partition("/")
    if not slash:
        return token
    if resolve(kind).plural != "pods" or not name:
        raise CLIError(f"only pods are supported here, not {token!r}", EXIT_USAGE)
    return name


async def get_pod(ctx: CommandContext, token: str) -> core_pb2.Pod:
    pod = await ctx.client().get("pods", pod_name(token), ctx.namespace)
    assert isinstance(pod, core_pb2.Pod)
    return pod


def choose_container(ctx: CommandContext, pod: core_pb2.Pod, container: str) -> str:
    """kubectl's rule: the named container; else the default-container annotation; else the
    first container, saying so on stderr when the pod has several."""
    if container:
        return container
    annotated = pod.metadata.annotations.get(DEFAULT_CONTAINER_ANNOTATION, "")
    if annotated and any(c.name == annotated for c in pod.spec.containers):
        return annotated
    if not pod.spec.containers:
        return ""
    chosen = pod.spec.containers[0].name
    if len(pod.spec.containers) + len(pod.spec.init_containers) > 1:
        names = [c.name for c in pod.spec.containers] + [f"{c.name} (init)" for c in pod.spec.init_containers]
        ctx.warn(f'Defaulted container "{chosen}" out of: {", ".join(names)}')
    return chosen


def write_bytes(stream: TextIO, data: bytes) -> None:
    """Bytes to a text stream: to its binary buffer when it has one (the real stdout), decoded
    otherwise (tests' StringIO); flushed, so streamed output shows as it arrives."""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        stream.write(data.decode(errors="replace"))
        stream.flush()


def stdin_is_terminal() -> bool:
    with contextlib.suppress(AttributeError, ValueError, OSError):
        return os.isatty(sys.stdin.fileno())
    return False


def wants_terminal(ctx: CommandContext, tty: bool, stdin: bool) -> bool:
    """kubectl's rule: a terminal needs -i and a terminal on our side; otherwise say so."""
    if tty and not (stdin and stdin_is_terminal()):
        ctx.warn(NO_TTY)
        return False
    return tty


async def stdin_chunks() -> AsyncIterator[bytes]:
    """The user's stdin, chunk by chunk, until EOF: read in the event loop (a pipe or terminal
    never blocks it; a regular file is read directly)."""
    fd = sys.stdin.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):
        while chunk := os.read(fd, CHUNK_BYTES):
            yield chunk
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    was_blocking = os.get_blocking(fd)
    pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        while chunk := await reader.read(CHUNK_BYTES):
            yield chunk
    finally:
        transport.close()
        os.set_blocking(fd, was_blocking)  # the dup shares the flag; give the shell its terminal back


@contextlib.contextmanager
def raw_terminal() -> Iterator[None]:
    """The terminal in raw mode (keys go to the remote side as typed, ^C included), restored
    whatever happens."""
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size()
    return size.columns, size.lines


@contextlib.contextmanager
def on_resize(callback: Callable[[], object]) -> Iterator[None]:
    """Call `callback()` on SIGWINCH for as long as the block runs."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGWINCH, callback)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGWINCH)


async def run_session(ctx: CommandContext, session: CommandSession, *, stdin: bool, raw: bool) -> None:
    """Relay a started exec/attach session: the user's stdin in (then its EOF), stdout and
    stderr out in order, the terminal raw and its size followed when `raw`."""
    feeder: asyncio.Task[None] | None = None
    if stdin:

        async def feed() -> None:
            async for chunk in stdin_chunks():
                await session.write(chunk)
            await session.close_stdin()

        feeder = asyncio.create_task(feed())
    try:
        with contextlib.ExitStack() as stack:
            if raw:
                stack.enter_context(raw_terminal())
                await session.resize(*terminal_size())
                stack.enter_context(
                    on_resize(lambda: asyncio.ensure_future(session.resize(*terminal_size())))
                )
            async for kind, data in session.output():
                write_bytes(ctx.out if kind == "stdout" else ctx.err, data)
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder
