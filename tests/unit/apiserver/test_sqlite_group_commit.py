"""The SQLite backend's group commit and progress notifications (a real SQLite file).

The storage contract tests (tests/integration/storage) cover the semantics every backend
shares; these cover what only this backend does: writes that arrive together share one
transaction, one failed precondition does not disturb the others, a failed transaction applies
nothing, and a progress request tells a watcher it has seen everything up to a revision.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.apiserver.storage.interface import (
    EventType,
    KeyExistsError,
    StorageUnavailableError,
    StoreEvent,
)
from services.apiserver.storage.sqlite import SQLiteStorage


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "state.db")
    yield storage
    await storage.close()


async def test_concurrent_writes_share_commits_and_keep_revision_order(store: SQLiteStorage) -> None:
    watch = store.watch("/k/", 1)
    first = asyncio.ensure_future(anext(watch))
    results = await asyncio.gather(*(store.create(f"/k/{i:03}", b"v") for i in range(200)))
    revisions = [kv.mod_revision for kv in results]
    assert sorted(revisions) == list(range(1, 201))  # every write got its own revision
    assert store.commits < 200  # ... but they did not each pay for a commit
    seen = [(await first).revision] + [(await anext(watch)).revision for _ in range(199)]
    assert seen == list(range(1, 201))  # watchers get them in revision order
    await watch.aclose()  # type: ignore[attr-defined]


async def test_a_failed_precondition_leaves_the_rest_of_the_group_alone(store: SQLiteStorage) -> None:
    await store.create("/k/taken", b"old")
    outcomes = await asyncio.gather(
        *(store.create(f"/k/{i}", b"v") for i in range(20)),
        store.create("/k/taken", b"new"),
        *(store.create(f"/k/x{i}", b"v") for i in range(20)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[20], KeyExistsError)
    assert not [o for i, o in enumerate(outcomes) if i != 20 and isinstance(o, BaseException)]
    taken = await store.get("/k/taken")
    assert taken is not None and taken.value == b"old"
    assert len((await store.list("/k/")).items) == 41


async def test_a_failed_transaction_applies_none_of_its_writes(store: SQLiteStorage) -> None:
    before = await store.current_revision()

    def broken(conn: sqlite3.Connection) -> StoreEvent | None:
        conn.execute("INSERT INTO no_such_table VALUES (1)")
        return None

    outcomes = await asyncio.gather(
        store.create("/k/a", b"v"),
        store._write(broken),
        store.create("/k/b", b"v"),
        return_exceptions=True,
    )
    # Whatever shared the broken write's transaction failed with it and was not applied; a
    # write in another commit succeeded. Either way the store and the answers agree.
    assert isinstance(outcomes[1], StorageUnavailableError)
    for key, outcome in zip(("/k/a", "/k/b"), (outcomes[0], outcomes[2]), strict=True):
        stored = await store.get(key)
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, StorageUnavailableError) and stored is None
        else:
            assert stored is not None and stored.mod_revision == outcome.mod_revision
    assert await store.current_revision() >= before
    # The store still takes writes afterwards.
    assert (await store.create("/k/after", b"v")).mod_revision > before


async def test_a_write_that_breaks_unexpectedly_fails_its_group_and_the_writer_goes_on(
    store: SQLiteStorage,
) -> None:
    def buggy(conn: sqlite3.Connection) -> StoreEvent | None:
        raise TypeError("a bug in a write")

    with pytest.raises(StorageUnavailableError, match="a bug in a write"):
        await store._write(buggy)
    assert (await store.create("/k/next", b"v")).key == "/k/next"


async def test_progress_reaches_only_progress_watchers_after_their_changes(store: SQLiteStorage) -> None:
    await store.create("/a/1", b"v")
    progress_watch = store.watch("/b/", 1, progress=True)
    plain_watch = store.watch("/b/", 1)
    await store.create("/b/1", b"v")
    event = await anext(progress_watch)
    assert (event.type, event.kv.key) == (EventType.PUT, "/b/1")
    assert (await anext(plain_watch)).kv.key == "/b/1"
    last = await store.create("/a/2", b"v")  # a change the /b/ watchers never see
    assert store.request_progress("/b/")
    progress = await asyncio.wait_for(anext(progress_watch), 5)
    assert progress.type is EventType.PROGRESS and progress.revision == last.mod_revision
    await store.create("/b/2", b"v")
    assert (await asyncio.wait_for(anext(plain_watch), 5)).kv.key == "/b/2"  # no progress here
    await progress_watch.aclose()  # type: ignore[attr-defined]
    await plain_watch.aclose()  # type: ignore[attr-defined]


async def test_current_revision_is_known_without_a_read(tmp_path: Path) -> None:
    first = SQLiteStorage(tmp_path / "state.db")
    for i in range(3):
        await first.create(f"/k/{i}", b"v")
    await first.close()
    reopened = SQLiteStorage(tmp_path / "state.db")
    assert await reopened.current_revision() == 3  # read once when the file is opened
    assert (await reopened.create("/k/3", b"v")).mod_revision == 4
    assert await reopened.current_revision() == 4
    await reopened.close()


async def test_watchers_of_every_prefix_width_see_exactly_their_keys(store: SQLiteStorage) -> None:
    prefixes = ["/registry/", "/registry/pods/", "/registry/pods/default/", "/registry/po", "/other/"]
    watches = {prefix: store.watch(prefix, 1) for prefix in prefixes}
    # Start every watch before the writes, so the changes arrive live, not from the history.
    firsts = {prefix: asyncio.ensure_future(anext(watch)) for prefix, watch in watches.items()}
    await asyncio.sleep(0.1)
    keys = [
        "/registry/pods/default/a",
        "/registry/pods/kube-system/b",
        "/registry/services/default/c",
        "/other/d",
    ]
    for key in keys:
        await store.create(key, b"v")
    for prefix, watch in watches.items():
        wanted = [k for k in keys if k.startswith(prefix)]
        seen = [(await asyncio.wait_for(firsts[prefix], 5)).kv.key]
        while len(seen) < len(wanted):
            seen.append((await asyncio.wait_for(anext(watch), 5)).kv.key)
        assert seen == wanted, prefix
        await watch.aclose()  # type: ignore[attr-defined]
