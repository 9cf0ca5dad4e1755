"""Serving a Pipeline stream (apiserver.proto): the calls of a stream run concurrently as they
arrive, each exactly as its unary RPC would run, and their answers go back in batches.

Why: a unary gRPC call costs a Python server about half a millisecond before any work (see
tests/bench/grpc_floor.py), while a message on an open stream costs a fraction of that. A client
that makes many small writes at once (the scheduler: a binding and an Event per pod) sends them
on one stream and pays per batch instead of per call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from pinnace.apiserver.v1 import apiserver_pb2

# Answers one message carries at most (each is at most an object of MAX_OBJECT_BYTES).
MAX_ANSWERS = 32


async def serve(
    calls: AsyncIterator[apiserver_pb2.PipelineCalls],
    answer: Callable[[apiserver_pb2.PipelineCall], Awaitable[apiserver_pb2.PipelineAnswer]],
) -> AsyncIterator[apiserver_pb2.PipelineAnswers]:
    """Answer every call read from `calls`; end once the client has closed its side and every
    call has been answered."""
    ready: asyncio.Queue[apiserver_pb2.PipelineAnswer | None] = asyncio.Queue()
    running: set[asyncio.Task[None]] = set()

    async def run(call: apiserver_pb2.PipelineCall) -> None:
        ready.put_nowait(await answer(call))

    async def read() -> None:
        try:
            async for message in calls:
                for call in message.calls:
                    task = asyncio.create_task(run(call))
                    running.add(task)
                    task.add_done_callback(running.discard)
            while running:  # the client is done sending: finish what it sent
                await asyncio.gather(*list(running), return_exceptions=True)
        finally:
            ready.put_nowait(None)

    reader = asyncio.create_task(read())
    try:
        finished = False
        while not finished:
            first = await ready.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_ANSWERS and not ready.empty():
                item = ready.get_nowait()
                if item is None:
                    finished = True
                    break
                batch.append(item)
            yield apiserver_pb2.PipelineAnswers(answers=batch)
    finally:
        reader.cancel()
        for task in list(running):
            task.cancel()
        with contextlib.suppress(BaseException):
            await reader
