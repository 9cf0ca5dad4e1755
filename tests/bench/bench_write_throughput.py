"""Benchmark: how many writes per second the SQLite backend sustains when many are in flight
(group commit), beside a commit-per-write floor measured in the same run.

  .venv/bin/python -m tests.bench.bench_write_throughput [--writes 4000] [--parallel 1,8,64]

  commit-per-write  bare sqlite3 on one thread: BEGIN, the kine SELECT + INSERT, COMMIT for
                    every write (WAL, synchronous=FULL): what a backend that commits each write
                    alone can reach, whatever the concurrency
  group commit      SQLiteStorage.create then .update of each key (half creates, half updates),
                    `--parallel` writes in flight; writes that queue up while a commit is on
                    disk share the next one

Each write is 1 KiB (about a pod). Files go to a temporary folder under --dir (default /var/tmp:
a real disk, not tmpfs), removed at the end. No root, no network.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from services.apiserver.storage.sqlite import SQLiteStorage

VALUE = b"x" * 1024


def commit_per_write(path: Path, writes: int) -> float:
    """Writes per second with one transaction and one fsync per write."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE kine (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, value BLOB)")
    conn.execute("CREATE INDEX kine_name_id ON kine (name, id)")
    started = time.perf_counter()
    for i in range(writes):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT id FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1", (f"/k/{i}",)).fetchone()
        conn.execute("INSERT INTO kine (name, value) VALUES (?, ?)", (f"/k/{i}", VALUE))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return writes / elapsed


async def group_commit(path: Path, writes: int, parallel: int) -> tuple[float, float]:
    """Writes per second through SQLiteStorage, and the mean number of writes per commit."""
    store = SQLiteStorage(path)
    await store.current_revision()  # open the file before the clock starts
    keys = iter(range(writes // 2))

    async def worker() -> None:
        for i in keys:
            kv = await store.create(f"/registry/pods/default/p{i}", VALUE)
            await store.update(kv.key, VALUE, kv.mod_revision)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    elapsed = time.perf_counter() - started
    commits = store.commits
    await store.close()
    return (writes // 2) * 2 / elapsed, (writes // 2) * 2 / max(commits, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=4000)
    parser.add_argument("--parallel", default="1,8,64", help="comma-separated writes in flight")
    parser.add_argument("--dir", default="/var/tmp", help="where the temporary folder goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-writes-", dir=args.dir) as tmp:
        floor = commit_per_write(Path(tmp) / "floor.db", args.writes)
        print(f"{'variant':<34} {'writes/s':>9} {'vs floor':>9} {'writes/commit':>14}")
        print(f"{'commit-per-write (floor)':<34} {floor:>9.0f} {1:>8.1f}x {1:>14.1f}")
        for parallel in (int(p) for p in args.parallel.split(",") if p):
            rate, group = asyncio.run(group_commit(Path(tmp) / f"group-{parallel}.db", args.writes, parallel))
            label = f"group commit, {parallel} in flight"
            print(f"{label:<34} {rate:>9.0f} {rate / floor:>8.1f}x {group:>14.1f}")


if __name__ == "__main__":
    main()
