"""The embedded SQLite backend: one file in WAL mode holding a revision log, as kine does.

Every write appends a row whose autoincrement id is the new store revision; the latest row
of a key is its current state (a row with deleted=1 is a tombstone). Lists at a past revision
and watches from a revision read the log; compaction deletes superseded rows.

Writes go through one writer thread that commits them in groups (group commit, as etcd batches
its raft log and bbolt transactions): the writes queued while the previous commit was on disk
share the next transaction. Each write checks its precondition (exists, revision) before it
writes anything, so a failed one leaves the others alone; a failed statement fails the whole
group, and none of it is applied. A write is acknowledged after the commit that holds it
(synchronous=FULL by default: an acknowledged write survives kill -9 and power loss), so under
load one fsync pays for many writes instead of one. Reads run on a second connection in their
own thread; WAL lets them proceed while a commit is on disk, and they see every acknowledged
write. A single-key get is one indexed lookup and runs on the event loop itself.

One apiserver per file: several apiservers need the etcd backend.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import queue
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
    StorageError,
    StorageUnavailableError,
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
# A created row stores create_revision 0 (its own id, unknown before the insert); reads map it.
_COLUMNS = (
    "id, name, created, deleted, CASE create_revision WHEN 0 THEN id ELSE create_revision END,"
    " prev_revision, value, old_value"
)
# A watcher that falls this far behind is closed; it re-watches from its last revision.
WATCH_QUEUE_LIMIT = 10_000
# Writes one transaction takes at most; the rest wait for the next commit.
MAX_GROUP = 512
_Row = tuple[int, str, int, int, int, int, bytes | None, bytes | None]
# A write: runs inside the writer's transaction, returns the change it made (or None). It
# raises StorageError only before it has written anything.
_WriteOp = Callable[[sqlite3.Connection], StoreEvent | None]
_Outcome = tuple["asyncio.Future[StoreEvent | None]", StoreEvent | None, BaseException | None]


def _event(row: _Row) -> StoreEvent:
    rev, name, created, deleted, create_rev, prev_rev, value, old_value = row
    prev = None if created else KeyValue(name, old_value or b"", prev_rev, create_rev)
    if deleted:
        return StoreEvent(EventType.DELETE, KeyValue(name, old_value or b"", rev, create_rev), prev)
    return StoreEvent(EventType.PUT, KeyValue(name, value or b"", rev, create_rev), prev)


class _Watcher:
    def __init__(self, prefix: str, progress: bool) -> None:
        self.prefix = prefix
        self.progress = progress
        self.queue: asyncio.Queue[StoreEvent | None] = asyncio.Queue()
        self.overflowed = False

    def offer(self, event: StoreEvent) -> None:
        if self.overflowed or not event.kv.key.startswith(self.prefix):
            return
        self.enqueue(event)

    def enqueue(self, event: StoreEvent) -> None:
        if self.queue.qsize() >= WATCH_QUEUE_LIMIT:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


def _bucket(path: str) -> str | None:
    """The first two segments of a key or prefix ("/registry/pods/"), None if it has fewer."""
    parts = path.split("/", 3)
    return "/".join(parts[:3]) + "/" if len(parts) == 4 else None


class _Watchers:
    """The live watchers, filed by the first two segments of their prefix: a write to a pod then
    visits the pod watchers (and any wider ones), not the watch of every kind."""

    def __init__(self) -> None:
        self._by_bucket: dict[str | None, set[_Watcher]] = {}

    def add(self, watcher: _Watcher) -> None:
        self._by_bucket.setdefault(_bucket(watcher.prefix), set()).add(watcher)

    def discard(self, watcher: _Watcher) -> None:
        self._by_bucket.get(_bucket(watcher.prefix), set()).discard(watcher)

    def for_key(self, key: str) -> list[_Watcher]:
        """Every watcher whose prefix could match `key` (they still check it themselves)."""
        found = list(self._by_bucket.get(None, ()))
        bucket = _bucket(key)
        if bucket is not None:
            found.extend(self._by_bucket.get(bucket, ()))
        return found

    def all(self) -> list[_Watcher]:
        return [w for watchers in self._by_bucket.values() for w in watchers]


class WatcherTooSlowError(Exception):
    """The watcher fell too far behind; re-watch from the last revision it saw."""


def _connect(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class SQLiteStorage(Storage):
    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = str(path)
        self._synchronous = synchronous
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-read")
        self._read_conn: sqlite3.Connection | None = None
        self._inline_conn: sqlite3.Connection | None = None  # used on the event loop only
        self._writes: queue.SimpleQueue[tuple[_WriteOp, asyncio.Future[StoreEvent | None]] | None] = (
            queue.SimpleQueue()
        )
        self._writer: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchers = _Watchers()
        self._open_lock = asyncio.Lock()
        # The newest revision whose change has been published to watchers (and so acknowledged).
        self._published = 0
        self._compacted_revision = 0
        self.commits = 0  # transactions committed; writes / commits is the mean group size

    # ------------------------------------------------------------------ plumbing

    async def _open(self) -> None:
        """Create the schema and start the writer, once, on first use."""
        if self._writer is None:
            async with self._open_lock:
                if self._writer is None:  # another caller may have opened it meanwhile
                    await self._start()

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()

        def setup() -> tuple[int, int]:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path, self._synchronous)
            conn.executescript(_SCHEMA)
            self._read_conn = conn
            return self._current(conn), self._compacted(conn)

        self._published, self._compacted_revision = await self._loop.run_in_executor(self._reader, setup)
        writer = threading.Thread(target=self._write_loop, name="sqlite-write", daemon=True)
        writer.start()
        self._writer = writer

    async def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        await self._open()
        assert self._loop is not None

        def call() -> _T:
            assert self._read_conn is not None
            return fn(self._read_conn)

        return await self._loop.run_in_executor(self._reader, call)

    async def _write(self, op: _WriteOp) -> StoreEvent | None:
        await self._open()
        assert self._loop is not None
        future: asyncio.Future[StoreEvent | None] = self._loop.create_future()
        self._writes.put((op, future))
        return await future

    def _write_loop(self) -> None:
        """The writer thread: take every queued write, run them in one transaction, commit once."""
        conn = _connect(self.path, self._synchronous)
        try:
            while True:
                first = self._writes.get()
                if first is None:
                    return
                group = [first]
                stop = False
                while len(group) < MAX_GROUP:
                    try:
                        item = self._writes.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    group.append(item)
                outcomes = self._commit_group(conn, group)
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._deliver, outcomes)
                if stop:
                    return
        finally:
            conn.close()

    def _commit_group(
        self,
        conn: sqlite3.Connection,
        group: builtins.list[tuple[_WriteOp, asyncio.Future[StoreEvent | None]]],
    ) -> builtins.list[_Outcome]:
        outcomes: builtins.list[_Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, future in group:
                try:
                    outcomes.append((future, op(conn), None))
                except StorageError as exc:  # a failed precondition, checked before writing
                    outcomes.append((future, None, exc))
            conn.execute("COMMIT")
            self.commits += 1
        except Exception as exc:  # no write of the group happened: each may be retried
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            error = StorageUnavailableError(f"sqlite: {exc}")
            return [(future, None, error) for _, future in group]
        return outcomes

    def _deliver(self, outcomes: builtins.list[_Outcome]) -> None:
        """On the event loop, in revision order: publish the group's changes, then answer."""
        for _, event, _ in outcomes:
            if event is None:
                continue
            self._published = event.revision
            for watcher in self._watchers.for_key(event.kv.key):
                watcher.offer(event)
        for future, event, error in outcomes:
            if future.done():  # the caller went away; the write happened regardless
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(event)

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        name: str,
        created: int,
        deleted: int,
        create_rev: int,
        prev_rev: int,
        value: bytes | None,
        old_value: bytes | None,
    ) -> StoreEvent:
        cursor = conn.execute(
            "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, value, old_value) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, created, deleted, create_rev, prev_rev, value, old_value),
        )
        rev = cursor.lastrowid
        assert rev is not None
        return _event((rev, name, created, deleted, create_rev or rev, prev_rev, value, old_value))

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
        def op(conn: sqlite3.Connection) -> StoreEvent:
            if self._latest(conn, key) is not None:
                raise KeyExistsError(key)
            return self._insert(conn, key, 1, 0, 0, 0, value, None)

        event = await self._write(op)
        assert event is not None
        return event.kv

    async def get(self, key: str) -> KeyValue | None:
        # One indexed lookup (~20 us) runs on the event loop itself: handing it to a thread and
        # back costs ten times that. WAL readers never wait for the writer.
        await self._open()
        if self._inline_conn is None:
            self._inline_conn = _connect(self.path, self._synchronous)
        row = self._latest(self._inline_conn, key)
        return None if row is None else self._kv(row)

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

        return await self._read(op)

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        return await self._replace(key, value, expected_revision)

    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        return await self._replace(key, None, expected_revision)

    async def _replace(self, key: str, value: bytes | None, expected_revision: int) -> KeyValue:
        """A conditional write of an existing key: a new value, or a tombstone when value is None."""

        def op(conn: sqlite3.Connection) -> StoreEvent:
            latest = self._latest(conn, key)
            if latest is None:
                raise KeyNotFoundError(key)
            if expected_revision and latest[0] != expected_revision:
                raise ConflictError(key, expected_revision, self._kv(latest))
            deleted = 1 if value is None else 0
            return self._insert(conn, key, 0, deleted, latest[4], latest[0], value, latest[6])

        event = await self._write(op)
        assert event is not None
        return event.kv

    def watch(self, prefix: str, start_revision: int, *, progress: bool = False) -> AsyncIterator[StoreEvent]:
        return self._watch(prefix, start_revision, progress)

    async def _watch(self, prefix: str, start_revision: int, progress: bool) -> AsyncIterator[StoreEvent]:
        await self._open()
        watcher = _Watcher(prefix, progress)
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
                if live.type is EventType.PROGRESS:
                    if live.revision > last:
                        yield live
                elif live.revision > last:
                    last = live.revision
                    yield live
        finally:
            self._watchers.discard(watcher)

    def request_progress(self, prefix: str) -> bool:
        """Tell the progress watchers on `prefix` the store's revision, after the changes queued
        for them: once they read it they have seen every change up to that revision."""
        marker = StoreEvent(EventType.PROGRESS, KeyValue(prefix, b"", self._published, 0), None)
        for watcher in self._watchers.for_key(prefix):
            if watcher.progress and watcher.prefix == prefix and not watcher.overflowed:
                watcher.enqueue(marker)
        return True

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

        return await self._read(op)

    @staticmethod
    def _current(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kine'").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _compacted(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = 'compact_revision'").fetchone()
        return int(row[0]) if row else 0

    async def current_revision(self) -> int:
        """The newest acknowledged revision, known in memory: every write goes through here."""
        await self._open()
        return self._published

    async def compacted_revision(self) -> int:
        await self._open()
        return self._compacted_revision

    async def compact(self, revision: int) -> None:
        def op(conn: sqlite3.Connection) -> None:
            target = min(revision, self._current(conn))
            if target <= self._compacted(conn):
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
            reached.append(target)

        reached: builtins.list[int] = []
        await self._write(op)
        if reached:  # known only once committed
            self._compacted_revision = max(self._compacted_revision, reached[0])

    async def close(self) -> None:
        if self._writer is not None:
            self._writes.put(None)
            writer = self._writer
            await asyncio.get_running_loop().run_in_executor(None, writer.join)
            self._writer = None
        if self._read_conn is not None:
            conn = self._read_conn
            await asyncio.get_running_loop().run_in_executor(self._reader, conn.close)
            self._read_conn = None
        if self._inline_conn is not None:
            self._inline_conn.close()
            self._inline_conn = None
        for watcher in self._watchers.all():
            watcher.queue.put_nowait(None)
        self._reader.shutdown(wait=True)
