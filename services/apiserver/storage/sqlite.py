"""The embedded SQLite backend: one file in WAL mode holding a revision log, as kine does.

Every write appends a row whose autoincrement id is the new store revision; the latest row
of a key is its current state (a row with deleted=1 is a tombstone). Lists at a past revision
and watches from a revision read the log; compaction deletes superseded rows. One thread owns
the connection, so writes are serialised and each one commits before it is acknowledged
(synchronous=FULL by default: an acknowledged write survives kill -9 and power loss).

One apiserver per file: several apiservers need the etcd backend.
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from services.apiserver.storage.interface import (
    CompactedError,
    ConflictError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Storage,
    StoreEvent,
    prefix_end,
)

_T = TypeVar("_T")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB,
    old_value BLOB
);
CREATE INDEX IF NOT EXISTS kine_name_id ON kine (name, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_COLUMNS = "id, name, created, deleted, create_revision, prev_revision, value, old_value"
# A watcher that falls this far behind is closed; it re-watches from its last revision.
WATCH_QUEUE_LIMIT = 10_000
_Row = tuple[int, str, int, int, int, int, bytes | None, bytes | None]


def _event(row: _Row) -> StoreEvent:
    rev, name, created, deleted, create_rev, prev_rev, value, old_value = row
    prev = None if created else KeyValue(name, old_value or b"", prev_rev, create_rev)
    if deleted:
        return StoreEvent(EventType.DELETE, KeyValue(name, old_value or b"", rev, create_rev), prev)
    return StoreEvent(EventType.PUT, KeyValue(name, value or b"", rev, create_rev), prev)


class _Watcher:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.queue: asyncio.Queue[StoreEvent | None] = asyncio.Queue()
        self.overflowed = False

    def offer(self, event: StoreEvent) -> None:
        if self.overflowed or not event.kv.key.startswith(self.prefix):
            return
        if self.queue.qsize() >= WATCH_QUEUE_LIMIT:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class WatcherTooSlowError(Exception):
    """The watcher fell too far behind; re-watch from the last revision it saw."""


class SQLiteStorage(Storage):
    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchers: set[_Watcher] = set()
        self._conn: sqlite3.Connection | None = None
        self._synchronous = synchronous
        self._ready = threading.Event()

    # ------------------------------------------------------------------ plumbing

    async def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return await self._loop.run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return fn(self._conn)

    def _publish(self, events: list[StoreEvent]) -> None:
        """Runs on the event loop, in revision order (scheduled from the single writer thread)."""
        for event in events:
            for watcher in list(self._watchers):
                watcher.offer(event)

    def _write(
        self,
        conn: sqlite3.Connection,
        name: str,
        created: int,
        deleted: int,
        create_rev: int,
        prev_rev: int,
        value: bytes | None,
        old_value: bytes | None,
    ) -> _Row:
        cursor = conn.execute(
            "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, value, old_value) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, created, deleted, create_rev, prev_rev, value, old_value),
        )
        rev = cursor.lastrowid
        assert rev is not None
        if created:
            create_rev = rev
            conn.execute("UPDATE kine SET create_revision = ? WHERE id = ?", (rev, rev))
        return (rev, name, created, deleted, create_rev, prev_rev, value, old_value)

    def _commit_and_publish(self, conn: sqlite3.Connection, row: _Row) -> StoreEvent:
        conn.execute("COMMIT")
        event = _event(row)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._publish, [event])
        return event

    @staticmethod
    def _latest(conn: sqlite3.Connection, key: str) -> _Row | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1", (key,)
        ).fetchone()
        return None if row is None or row[3] else row

    @staticmethod
    def _kv(row: _Row) -> KeyValue:
        return KeyValue(row[1], row[6] or b"", row[0], row[4])

    # ------------------------------------------------------------------ the contract

    async def create(self, key: str, value: bytes) -> KeyValue:
        def op(conn: sqlite3.Connection) -> KeyValue:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self._latest(conn, key) is not None:
                    raise KeyExistsError(key)
                row = self._write(conn, key, 1, 0, 0, 0, value, None)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return self._commit_and_publish(conn, row).kv

        return await self._run(op)

    async def get(self, key: str) -> KeyValue | None:
        def op(conn: sqlite3.Connection) -> KeyValue | None:
            row = self._latest(conn, key)
            return None if row is None else self._kv(row)

        return await self._run(op)

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> ListResult:
        def op(conn: sqlite3.Connection) -> ListResult:
            current = self._current(conn)
            at = revision or current
            compacted = self._compacted(conn)
            if revision and revision < compacted:
                raise CompactedError(revision, compacted)
            low = max(prefix, start_after + "\x00") if start_after else prefix
            sql = (
                f"SELECT {_COLUMNS} FROM kine WHERE id IN ("
                "  SELECT MAX(id) FROM kine WHERE name >= ? AND name < ? AND id <= ? GROUP BY name"
                ") AND deleted = 0 ORDER BY name"
            )
            params: list[Any] = [low, prefix_end(prefix), at]
            if limit:
                sql += " LIMIT ?"
                params.append(limit + 1)
            rows = conn.execute(sql, params).fetchall()
            more = bool(limit) and len(rows) > limit
            if more:
                rows = rows[:limit]
            return ListResult([self._kv(r) for r in rows], at, more)

        return await self._run(op)

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        return await self._replace(key, value, expected_revision)

    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        return await self._replace(key, None, expected_revision)

    async def _replace(self, key: str, value: bytes | None, expected_revision: int) -> KeyValue:
        """A conditional write of an existing key: a new value, or a tombstone when value is None."""

        def op(conn: sqlite3.Connection) -> KeyValue:
            conn.execute("BEGIN IMMEDIATE")
            try:
                latest = self._latest(conn, key)
                if latest is None:
                    raise KeyNotFoundError(key)
                if expected_revision and latest[0] != expected_revision:
                    raise ConflictError(key, expected_revision, self._kv(latest))
                deleted = 1 if value is None else 0
                row = self._write(conn, key, 0, deleted, latest[4], latest[0], value, latest[6])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return self._commit_and_publish(conn, row).kv

        return await self._run(op)

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[StoreEvent]:
        watcher = _Watcher(prefix)
        self._watchers.add(watcher)
        try:
            last = start_revision - 1
            for event in await self._history(prefix, start_revision):
                last = event.revision
                yield event
            while True:
                live = await watcher.queue.get()
                if live is None:
                    raise WatcherTooSlowError(f"watcher on {prefix} fell {WATCH_QUEUE_LIMIT} events behind")
                if live.revision > last:
                    last = live.revision
                    yield live
        finally:
            self._watchers.discard(watcher)

    async def _history(self, prefix: str, start_revision: int) -> builtins.list[StoreEvent]:
        def op(conn: sqlite3.Connection) -> builtins.list[StoreEvent]:
            compacted = self._compacted(conn)
            if start_revision <= compacted:
                raise CompactedError(start_revision, compacted)
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM kine WHERE id >= ? AND name >= ? AND name < ? ORDER BY id",
                (start_revision, prefix, prefix_end(prefix)),
            ).fetchall()
            return [_event(r) for r in rows]

        return await self._run(op)

    @staticmethod
    def _current(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kine'").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _compacted(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = 'compact_revision'").fetchone()
        return int(row[0]) if row else 0

    async def current_revision(self) -> int:
        return await self._run(self._current)

    async def compacted_revision(self) -> int:
        return await self._run(self._compacted)

    async def compact(self, revision: int) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                target = min(revision, self._current(conn))
                if target <= self._compacted(conn):
                    conn.execute("ROLLBACK")
                    return
                # Drop every row superseded at `target`, and tombstones at or before it.
                conn.execute(
                    "DELETE FROM kine WHERE id <= ? AND (deleted = 1 OR id NOT IN "
                    "(SELECT MAX(id) FROM kine WHERE id <= ? GROUP BY name))",
                    (target, target),
                )
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('compact_revision', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (target,),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        await self._run(op)

    async def close(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.close()

        if self._conn is not None:
            await self._run(op)
            self._conn = None
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        self._executor.shutdown(wait=True)
