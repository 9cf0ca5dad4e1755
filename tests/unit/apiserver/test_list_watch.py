"""Lists and watches: selectors server-side, paging, resourceVersion semantics, bookmarks, 410."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.apiserver import service
from services.apiserver.server import APIServer
from services.client import errors
from services.client.client import Client, WatchEvent
from tests.unit.apiserver.conftest import config_for
from tests.unit.apiserver.helpers import pod


async def _events(client: Client, count: int, **kwargs: object) -> list[WatchEvent]:
    seen: list[WatchEvent] = []

    async def run() -> None:
        async for event in client.watch("pods", "default", **kwargs):  # type: ignore[arg-type]
            seen.append(event)
            if len(seen) == count:
                return

    await asyncio.wait_for(run(), 10)
    return seen


async def test_selectors_are_evaluated_server_side(client: Client) -> None:
    await client.create(pod("a", labels={"app": "web", "tier": "fe"}, node="n1"))
    await client.create(pod("b", labels={"app": "web", "tier": "be"}, node="n2"))
    await client.create(pod("c", labels={"app": "db"}))
    names = lambda result: [p.metadata.name for p in result.items]  # noqa: E731
    assert names(await client.list("pods", "default", label_selector="app=web")) == ["a", "b"]
    assert names(await client.list("pods", "default", label_selector="app in (web,db),tier!=fe")) == [
        "b",
        "c",
    ]
    assert names(await client.list("pods", "default", label_selector="!tier")) == ["c"]
    assert names(await client.list("pods", "default", field_selector="spec.nodeName=n2")) == ["b"]
    assert names(await client.list("pods", field_selector="spec.nodeName=")) == ["c"]
    with pytest.raises(errors.BadRequestError, match="unable to parse requirement"):
        await client.list("pods", label_selector="app in (")
    with pytest.raises(errors.BadRequestError, match=r"field label not supported: spec\.bogus"):
        await client.list("pods", field_selector="spec.bogus=x")


async def test_paging_is_consistent_across_writes(client: Client) -> None:
    for i in range(7):
        await client.create(pod(f"p{i}"))
    first = await client.list("pods", "default", limit=3)
    assert [p.metadata.name for p in first.items] == ["p0", "p1", "p2"] and first.continue_token
    await client.create(pod("p05"))  # sorts inside the next page, but was written after the list
    await client.delete("pods", "p4", "default")
    second = await client.list("pods", "default", limit=3, continue_token=first.continue_token)
    third = await client.list("pods", "default", limit=3, continue_token=second.continue_token)
    assert [p.metadata.name for p in second.items + third.items] == ["p3", "p4", "p5", "p6"]
    assert not third.continue_token and second.resource_version == first.resource_version
    everything = await client.list_all("pods", "default", page_size=2)
    assert len(everything.items) == 7
    with pytest.raises(errors.BadRequestError, match="continue key is not valid"):
        await client.list("pods", "default", limit=3, continue_token="garbage")


async def test_list_resource_version_semantics(client: Client) -> None:
    created = await client.create(pod("rv"))
    latest = await client.list("pods", "default")
    assert int(latest.resource_version) >= int(created.metadata.resource_version)
    cached = await client.list("pods", "default", resource_version="0")
    assert [p.metadata.name for p in cached.items] == ["rv"]
    await client.delete("pods", "rv", "default")
    exact = await client.list(
        "pods", "default", resource_version=created.metadata.resource_version, resource_version_match="Exact"
    )
    assert [p.metadata.name for p in exact.items] == ["rv"]


async def test_watch_from_now_and_from_a_revision(client: Client) -> None:
    await client.create(pod("existing"))
    watcher = asyncio.create_task(_events(client, 3))
    await asyncio.sleep(0.2)
    created = await client.create(pod("new"))
    await client.delete("pods", "new", "default")
    events = await watcher
    assert [(e.type, e.obj.metadata.name) for e in events] == [
        ("ADDED", "existing"),
        ("ADDED", "new"),
        ("DELETED", "new"),
    ]
    replay = await _events(client, 1, resource_version=created.metadata.resource_version)
    assert [(e.type, e.obj.metadata.name) for e in replay] == [("DELETED", "new")]


async def test_watch_translates_selector_changes(client: Client) -> None:
    created = await client.create(pod("mover", labels={"app": "web"}))
    watcher = asyncio.create_task(
        _events(client, 3, label_selector="app=web", resource_version=created.metadata.resource_version)
    )
    await asyncio.sleep(0.2)
    moved = await client.patch("pods", "mover", {"metadata": {"labels": {"app": "db"}}}, "default")
    await client.patch("pods", "mover", {"metadata": {"labels": {"app": "web"}}}, "default")
    await client.create(pod("other", labels={"app": "db"}))
    await client.create(pod("joiner", labels={"app": "web"}))
    events = await watcher
    assert [(e.type, e.obj.metadata.name) for e in events] == [
        ("DELETED", "mover"),
        ("ADDED", "mover"),
        ("ADDED", "joiner"),
    ]
    assert events[0].obj.metadata.resource_version == moved.metadata.resource_version


async def test_bookmarks(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "BOOKMARK_INTERVAL_SECONDS", 0.1)
    created = await client.create(pod("b"))
    events = await _events(client, 1, resource_version=created.metadata.resource_version, bookmarks=True)
    assert events[0].type == "BOOKMARK"
    assert int(events[0].obj.metadata.resource_version) >= int(created.metadata.resource_version)


async def test_compacted_revision_answers_expired(tmp_path: Path) -> None:
    first = APIServer(config_for(tmp_path))
    await first.start()
    api = Client.connect(f"127.0.0.1:{first.port}")
    old = await api.create(pod("old"))
    await api.create(pod("newer"))
    await api.close()
    await first.stop(grace=0)
    # A restarted apiserver's cache starts now; history before it lives only in storage.
    second = APIServer(config_for(tmp_path))
    await second.start()
    api = Client.connect(f"127.0.0.1:{second.port}")
    try:
        replay = await _events(api, 1, resource_version=old.metadata.resource_version)
        assert replay[0].obj.metadata.name == "newer"
        await second.storage.compact(await second.storage.current_revision())
        with pytest.raises(errors.ExpiredError, match="too old resource version") as caught:
            await _events(api, 1, resource_version=old.metadata.resource_version)
        assert caught.value.code.name == "OUT_OF_RANGE"
        names = [p.metadata.name for p in (await api.list("pods", "default")).items]
        assert names == ["newer", "old"]
    finally:
        await api.close()
        await second.stop(grace=0)


async def test_watch_timeout_ends_the_stream(client: Client) -> None:
    async def run() -> list[WatchEvent]:
        return [e async for e in client.watch("pods", "default", resource_version="1", timeout_seconds=1)]

    assert await asyncio.wait_for(run(), 5) is not None
