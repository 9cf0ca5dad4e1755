"""Create and Bind calls pipelined on one stream (the apiserver's Pipeline RPC).

Each call is answered exactly as its unary RPC would answer it (the same object, the same
error class), but the calls that are ready together travel in one message, and so do their
answers: a client that writes many small objects at once (the scheduler binds a pod and records
an Event for it, hundreds a second) pays a stream message per batch instead of a gRPC call per
object. On an apiserver without the RPC, `PipelineUnsupportedError` tells the caller to use the unary call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import grpc

from pinnace.apiserver.v1 import apiserver_pb2
from services.client.errors import from_rpc_error, from_status

# Calls one message carries at most.
MAX_CALLS = 64


class PipelineUnsupportedError(Exception):
    """The apiserver does not serve Pipeline: use the unary RPCs."""


class Pipeline:
    def __init__(self, stub: Any, timeout: float) -> None:
        self._stub = stub
        self.timeout = timeout
        self.supported: bool | None = None  # unknown until the first stream answers
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[apiserver_pb2.PipelineAnswer]] = {}
        self._outbox: list[apiserver_pb2.PipelineCall] = []
        self._wake = asyncio.Event()
        self._stream: asyncio.Task[None] | None = None

    async def call(self, call: apiserver_pb2.PipelineCall) -> apiserver_pb2.PipelineAnswer:
        """Send one call and wait for its answer; an error answer raises its APIStatusError."""
        if self.supported is False:
            raise PipelineUnsupportedError
        call.id = next(self._ids)
        future: asyncio.Future[apiserver_pb2.PipelineAnswer] = asyncio.get_running_loop().create_future()
        self._pending[call.id] = future
        self._outbox.append(call)
        self._wake.set()
        if self._stream is None or self._stream.done():
            self._stream = asyncio.create_task(self._run(), name="apiserver-pipeline")
        try:
            async with asyncio.timeout(self.timeout):
                answer = await future
        except TimeoutError:
            raise from_status(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", None) from None
        finally:
            self._pending.pop(call.id, None)
        if answer.HasField("error"):
            raise from_status(_code(answer.code), answer.message, answer.error)
        return answer

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            with contextlib.suppress(BaseException):
                await self._stream
            self._stream = None

    async def _run(self) -> None:
        """One stream: write what the callers queued, resolve their answers; when it ends, every
        caller still waiting gets the error, and the next call opens a new stream."""
        stream = self._stub.Pipeline()
        reader = asyncio.create_task(self._read(stream))
        reader.add_done_callback(lambda task: task.cancelled() or task.exception())
        error: BaseException | None = None
        try:
            while not reader.done():
                if not self._outbox:
                    self._wake.clear()
                    waiter = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                calls, self._outbox = self._outbox[:MAX_CALLS], self._outbox[MAX_CALLS:]
                await stream.write(apiserver_pb2.PipelineCalls(calls=calls))
            await reader
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
        finally:
            reader.cancel()
            stream.cancel()
            self._fail(error)

    async def _read(self, stream: Any) -> None:
        while True:
            message = await stream.read()
            if message is grpc.aio.EOF:  # type: ignore[attr-defined]
                raise ConnectionError("the apiserver closed the pipeline")
            self.supported = True
            for answer in message.answers:
                future = self._pending.get(answer.id)
                if future is not None and not future.done():
                    future.set_result(answer)

    def _fail(self, error: BaseException | None) -> None:
        rpc_error = error if isinstance(error, grpc.aio.AioRpcError) else None
        if rpc_error is not None and rpc_error.code() is grpc.StatusCode.UNIMPLEMENTED and not self.supported:
            self.supported = False
        for future in self._pending.values():
            if future.done():
                continue
            if self.supported is False:
                future.set_exception(PipelineUnsupportedError())
            elif rpc_error is not None:
                future.set_exception(from_rpc_error(rpc_error))
            else:
                future.set_exception(
                    from_status(grpc.StatusCode.UNAVAILABLE, f"pipeline closed: {error}", None)
                )
        self._outbox.clear()


def _code(number: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN
