"""WatchBatches: the same watch as Watch, with the events that are ready together in one message.

Clients use it and fall back to Watch when the apiserver predates it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from pinnace.apiserver.v1 import apiserver_pb2
from services.apiserver import watchcache
from services.apiserver.server import APIServer
from services.client.client import Client
from services.machinery.envelope import unwrap
from tests.unit.apiserver.conftest import apiserver_without
from tests.unit.apiserver.helpers import pod


def _request(resource_version: str = "0") -> apiserver_pb2.WatchRequest:
    return apiserver_pb2.WatchRequest(resource="pods", namespace="default", resource_version=resource_version)


async def _collect(stream: Any, count: int) -> list[Any]:
    """Read messages until `count` events have arrived (a message may be a batch)."""
    messages: list[Any] = []
    events = 0
    async for message in stream:
        messages.append(message)
        events += len(message.events) if isinstance(message, apiserver_pb2.WatchEventBatch) else 1
        if events >= count:
            break
    stream.cancel()
    return messages


async def test_batches_carry_the_same_events_in_the_same_order(client: Client) -> None:
    for i in range(watchcache.MAX_BATCH + 44):
        await client.create(pod(f"p{i:03}"))
    total = watchcache.MAX_BATCH + 44
    batches = await asyncio.wait_for(_collect(client.stub.WatchBatches(_request()), total), 20)
    singles = await asyncio.wait_for(_collect(client.stub.Watch(_request()), total), 20)
    batched = [(e.type, unwrap(e.object).metadata.name) for b in batches for e in b.events]  # type: ignore[attr-defined]
    single = [(e.type, unwrap(e.object).metadata.name) for e in singles]  # type: ignore[attr-defined]
    assert batched == single and len(batched) == total
    # The current state arrived in messages of at most MAX_BATCH events, not one message each.
    assert [len(b.events) for b in batches] == [watchcache.MAX_BATCH, 44]


async def test_changes_that_arrive_together_share_messages(client: Client) -> None:
    created = await client.create(pod("first"))
    stream = client.stub.WatchBatches(_request(created.metadata.resource_version))
    reader = asyncio.ensure_future(_collect(stream, 60))
    await asyncio.sleep(0.2)
    await asyncio.gather(*(client.create(pod(f"burst-{i}")) for i in range(60)))
    messages = await asyncio.wait_for(reader, 20)
    names = [unwrap(e.object).metadata.name for m in messages for e in m.events]  # type: ignore[attr-defined]
    assert sorted(names) == sorted(f"burst-{i}" for i in range(60))
    revisions = [int(unwrap(e.object).metadata.resource_version) for m in messages for e in m.events]  # type: ignore[attr-defined]
    assert revisions == sorted(revisions)  # in revision order across messages
    assert len(messages) < 60


async def test_a_bad_watch_fails_the_same_way_on_both(client: Client) -> None:
    for method in (client.stub.Watch, client.stub.WatchBatches):
        stream = method(apiserver_pb2.WatchRequest(resource="pods", resource_version="not-a-number"))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stream:
                pass
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def old_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[APIServer]:
    async with apiserver_without("WatchBatches", tmp_path, monkeypatch) as apiserver:
        yield apiserver


async def test_the_client_falls_back_to_watch_on_an_older_apiserver(old_server: APIServer) -> None:
    client = Client.connect(f"127.0.0.1:{old_server.port}", timeout=10)
    try:
        await client.create(pod("a"))
        await client.create(pod("b"))
        seen: list[str] = []

        async def run() -> None:
            async for event in client.watch("pods", "default", resource_version="0"):
                seen.append(event.obj.metadata.name)  # type: ignore[attr-defined]
                if len(seen) == 2:
                    return

        await asyncio.wait_for(run(), 10)
        assert seen == ["a", "b"]
        assert client._batched_watch is False  # and later watches go straight to Watch
    finally:
        await client.close()
