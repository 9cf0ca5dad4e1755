"""The contract of services.apiserver.storage.interface.Storage, for every backend."""

from __future__ import annotations

import asyncio

import pytest

from services.apiserver.storage.interface import (
    CompactedError,
    ConflictError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    Storage,
    StoreEvent,
)


async def collect(
    store: Storage, prefix: str, start: int, count: int, timeout: float = 5.0
) -> list[StoreEvent]:
    events: list[StoreEvent] = []

    async def run() -> None:
        async for event in store.watch(prefix, start):
            events.append(event)
            if len(events) == count:
                return

    await asyncio.wait_for(run(), timeout)
    return events


async def test_create_get_update_delete(store: Storage) -> None:
    created = await store.create("/registry/pods/default/a", b"v1")
    assert created.mod_revision == created.create_revision > 0
    got = await store.get("/registry/pods/default/a")
    assert got == created
    updated = await store.update("/registry/pods/default/a", b"v2", created.mod_revision)
    assert updated.mod_revision > created.mod_revision
    assert updated.create_revision == created.create_revision
    deleted = await store.delete("/registry/pods/default/a")
    assert deleted.value == b"v2" and deleted.mod_revision > updated.mod_revision
    assert await store.get("/registry/pods/default/a") is None
    assert await store.current_revision() == deleted.mod_revision


async def test_create_existing_fails_and_recreate_after_delete(store: Storage) -> None:
    first = await store.create("/k", b"1")
    with pytest.raises(KeyExistsError):
        await store.create("/k", b"2")
    await store.delete("/k")
    again = await store.create("/k", b"3")
    assert again.create_revision > first.create_revision


async def test_conditional_writes(store: Storage) -> None:
    kv = await store.create("/k", b"1")
    await store.update("/k", b"2", kv.mod_revision)
    with pytest.raises(ConflictError) as caught:
        await store.update("/k", b"3", kv.mod_revision)
    assert caught.value.current is not None and caught.value.current.value == b"2"
    with pytest.raises(ConflictError):
        await store.delete("/k", kv.mod_revision)
    with pytest.raises(KeyNotFoundError):
        await store.update("/missing", b"x", 1)
    with pytest.raises(KeyNotFoundError):
        await store.delete("/missing")
    assert (await store.get("/k")).value == b"2"  # type: ignore[union-attr]


async def test_concurrent_updates_exactly_one_wins(store: Storage) -> None:
    kv = await store.create("/counter", b"0")
    results = await asyncio.gather(
        *(store.update("/counter", str(i).encode(), kv.mod_revision) for i in range(10)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, BaseException))


async def test_list_prefix_sorted_paged_and_at_revision(store: Storage) -> None:
    for name in ("c", "a", "b", "d"):
        await store.create(f"/registry/pods/ns1/{name}", name.encode())
    await store.create("/registry/pods/ns2/x", b"x")
    await store.create("/registry/podsx/ns1/y", b"y")
    everything = await store.list("/registry/pods/")
    assert [kv.key.rsplit("/", 2)[-2:] for kv in everything.items] == [
        ["ns1", "a"],
        ["ns1", "b"],
        ["ns1", "c"],
        ["ns1", "d"],
        ["ns2", "x"],
    ]
    page = await store.list("/registry/pods/ns1/", limit=2)
    assert [kv.value for kv in page.items] == [b"a", b"b"] and page.more
    rest = await store.list(
        "/registry/pods/ns1/", limit=2, start_after=page.items[-1].key, revision=page.revision
    )
    assert [kv.value for kv in rest.items] == [b"c", b"d"] and not rest.more
    before = await store.current_revision()
    b = await store.get("/registry/pods/ns1/b")
    assert b is not None
    await store.update(b.key, b"b2", b.mod_revision)
    await store.delete("/registry/pods/ns1/a")
    past = await store.list("/registry/pods/ns1/", revision=before)
    assert [kv.value for kv in past.items] == [b"a", b"b", b"c", b"d"]
    now = await store.list("/registry/pods/ns1/")
    assert [kv.value for kv in now.items] == [b"b2", b"c", b"d"]


async def test_watch_replays_history_then_streams(store: Storage) -> None:
    a = await store.create("/w/a", b"1")
    await store.create("/other/z", b"z")
    task = asyncio.create_task(collect(store, "/w/", a.mod_revision, 4))
    await asyncio.sleep(0.05)
    b = await store.create("/w/b", b"2")
    await store.update("/w/a", b"3", a.mod_revision)
    await store.delete("/w/b")
    events = await task
    assert [(e.type, e.kv.key, e.kv.value) for e in events] == [
        (EventType.PUT, "/w/a", b"1"),
        (EventType.PUT, "/w/b", b"2"),
        (EventType.PUT, "/w/a", b"3"),
        (EventType.DELETE, "/w/b", b"2"),
    ]
    assert events[0].prev is None
    assert events[2].prev is not None and events[2].prev.value == b"1"
    revisions = [e.revision for e in events]
    assert revisions == sorted(revisions) and len(set(revisions)) == 4
    assert events[1].revision == b.mod_revision


async def test_watch_resumes_without_loss_or_duplicates(store: Storage) -> None:
    first = await store.create("/r/0", b"0")
    for i in range(1, 5):
        await store.create(f"/r/{i}", str(i).encode())
    seen = await collect(store, "/r/", first.mod_revision, 3)
    resumed = await collect(store, "/r/", seen[-1].revision + 1, 2)
    assert [e.kv.key for e in seen + resumed] == [f"/r/{i}" for i in range(5)]


async def test_compaction(store: Storage) -> None:
    kv = await store.create("/c/a", b"1")
    kv = await store.update("/c/a", b"2", kv.mod_revision)
    await store.create("/c/b", b"x")
    gone = await store.delete("/c/b")
    await store.compact(gone.mod_revision)
    assert await store.compacted_revision() == gone.mod_revision
    with pytest.raises(CompactedError):
        await collect(store, "/c/", kv.mod_revision, 1)
    with pytest.raises(CompactedError):
        await store.list("/c/", revision=kv.mod_revision)
    current = await store.list("/c/")
    assert [(i.key, i.value) for i in current.items] == [("/c/a", b"2")]
    later = await store.update("/c/a", b"3", kv.mod_revision)
    events = await collect(store, "/c/", gone.mod_revision + 1, 1)
    assert events[0].revision == later.mod_revision


async def test_many_watchers_all_see_every_event(store: Storage) -> None:
    start = await store.current_revision() + 1
    tasks = [asyncio.create_task(collect(store, "/m/", start, 20)) for _ in range(20)]
    await asyncio.sleep(0.05)
    for i in range(20):
        await store.create(f"/m/{i:02d}", b"x")
    results = await asyncio.gather(*tasks)
    assert all([e.kv.key for e in r] == [f"/m/{i:02d}" for i in range(20)] for r in results)
