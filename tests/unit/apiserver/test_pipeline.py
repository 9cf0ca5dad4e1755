"""The Pipeline RPC: Create and Bind calls on one stream, each answered exactly as its unary
RPC answers it; the client library falls back to the unary RPCs on an apiserver without it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from pinnace.apiserver.v1 import apiserver_pb2
from services.apiserver.server import APIServer
from services.client import errors
from services.client.client import Client
from services.machinery.envelope import wrap
from tests.unit.apiserver.conftest import apiserver_without
from tests.unit.apiserver.helpers import manifest, pod

NODE = "{apiVersion: v1, kind: Node, metadata: {name: node-1}}"


@pytest.fixture
async def piped(server: APIServer) -> AsyncIterator[Client]:
    client = Client.connect(f"127.0.0.1:{server.port}", timeout=10)
    client.use_pipeline()
    yield client
    await client.close()


async def test_pipelined_creates_and_bindings_answer_like_the_unary_calls(
    piped: Client, client: Client
) -> None:
    await client.create(manifest(NODE))
    created = await asyncio.gather(*(piped.create(pod(f"p{i}")) for i in range(100)))
    assert sorted(p.metadata.name for p in created) == sorted(f"p{i}" for i in range(100))  # type: ignore[attr-defined]
    assert all(p.metadata.uid and p.metadata.resource_version for p in created)  # type: ignore[attr-defined]
    bound = await asyncio.gather(*(piped.bind(f"p{i}", "default", "node-1") for i in range(100)))
    assert {p.spec.node_name for p in bound} == {"node-1"}
    stored = await client.get("pods", "p7", "default")
    assert stored.spec.node_name == "node-1"  # type: ignore[attr-defined]
    assert piped._pipeline is not None and piped._pipeline.supported is True


async def test_a_failed_call_fails_alone_with_the_unary_error(piped: Client, client: Client) -> None:
    await client.create(pod("taken"))
    outcomes = await asyncio.gather(
        piped.create(pod("fresh")),
        piped.create(pod("taken")),
        piped.create(pod("Not_Valid")),
        piped.bind("nowhere", "default", "node-1"),
        piped.bind("fresh", "default", ""),
        return_exceptions=True,
    )
    assert not isinstance(outcomes[0], BaseException)
    assert isinstance(outcomes[1], errors.AlreadyExistsError)
    assert isinstance(outcomes[2], errors.InvalidError)
    assert isinstance(outcomes[3], errors.NotFoundError)
    assert isinstance(outcomes[4], errors.InvalidError)
    # The unary call says the same.
    with pytest.raises(errors.AlreadyExistsError) as unary:
        await client.create(pod("taken"))
    assert str(unary.value) == str(outcomes[1])
    assert (await client.list("pods", "default")).items.__len__() == 2  # nothing else was written


async def test_an_empty_call_is_a_bad_request(client: Client) -> None:
    stream = client.stub.Pipeline()
    await stream.write(apiserver_pb2.PipelineCalls(calls=[apiserver_pb2.PipelineCall(id=7)]))
    answers = await stream.read()
    await stream.done_writing()
    (answer,) = answers.answers
    assert answer.id == 7 and answer.HasField("error")
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def test_the_stream_finishes_what_was_sent_before_it_closes(client: Client) -> None:
    stream = client.stub.Pipeline()
    calls = [
        apiserver_pb2.PipelineCall(id=i, create=apiserver_pb2.CreateRequest(object=wrap(pod(f"q{i}"))))
        for i in range(20)
    ]
    await stream.write(apiserver_pb2.PipelineCalls(calls=calls))
    await stream.done_writing()
    ids: list[int] = []
    async for answers in stream:
        ids.extend(a.id for a in answers.answers if a.HasField("created"))
    assert sorted(ids) == list(range(20))


@pytest.fixture
async def old_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[APIServer]:
    async with apiserver_without("Pipeline", tmp_path, monkeypatch) as apiserver:
        yield apiserver


async def test_the_client_falls_back_to_unary_calls_on_an_older_apiserver(old_server: APIServer) -> None:
    client = Client.connect(f"127.0.0.1:{old_server.port}", timeout=10)
    client.use_pipeline()
    try:
        created = await asyncio.gather(*(client.create(pod(f"p{i}")) for i in range(5)))
        assert len(created) == 5
        assert client._pipeline is not None and client._pipeline.supported is False
        assert (await client.create(pod("later"))).metadata.name == "later"  # type: ignore[attr-defined]
    finally:
        await client.close()
