"""Benchmark: single-object create/update/delete latency of the storage backends, each beside
its floor measured in the same run.

  sqlite-floor    bare sqlite3: one INSERT/UPDATE/DELETE + COMMIT per request, WAL and
                  synchronous=FULL (the backend's durability), on a single writer thread
  sqlite-backend  SQLiteStorage.create/update/delete on a file in the same folder
  etcd-raw        Put / Put / DeleteRange through the same generated gRPC stub, no Txn
  etcd-backend    EtcdStorage.create/update/delete (compare-guarded Txns)

The load is an open loop: request i is issued at t0 + i/rate whether or not earlier ones
have finished, and its latency is measured from that scheduled instant, so queueing behind a
slow request counts (no coordinated omission). Each variant runs three phases of
seconds/3: creates of fresh keys, one update of each, one delete of each. etcd is a
single member started by this program on loopback ports picked free, with its data dir in the
same temporary folder as the SQLite files (same disk, both fsync every write); everything is
removed at the end.

Run from the repository root:  .venv/bin/python tests/bench/bench_storage.py [--rate 200] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402

from pinnace.etcd.v3 import rpc_pb2, rpc_pb2_grpc  # noqa: E402
from services.apiserver.storage.etcd import CHANNEL_OPTIONS, EtcdStorage  # noqa: E402
from services.apiserver.storage.interface import Storage  # noqa: E402
from services.apiserver.storage.sqlite import SQLiteStorage  # noqa: E402
from tests.integration.etcd_cluster import etcd_available, start_etcd  # noqa: E402

OPS = ("create", "update", "delete")
VALUE = b"x" * 1024  # about the size of a small Pod object


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


class Target:
    """One variant: create, update and delete of key i (update and delete run after create)."""

    name = ""

    async def setup(self) -> None: ...

    async def create(self, i: int) -> None:
        raise NotImplementedError

    async def update(self, i: int) -> None:
        raise NotImplementedError

    async def delete(self, i: int) -> None:
        raise NotImplementedError

    async def close(self) -> None: ...


class StorageTarget(Target):
    """A backend through the Storage contract, keeping each key's revision for the update."""

    def __init__(self, name: str, store: Storage) -> None:
        self.name = name
        self.store = store
        self.revisions: dict[int, int] = {}

    async def create(self, i: int) -> None:
        self.revisions[i] = (await self.store.create(f"/registry/pods/bench/p{i:06d}", VALUE)).mod_revision

    async def update(self, i: int) -> None:
        await self.store.update(f"/registry/pods/bench/p{i:06d}", VALUE, self.revisions[i])

    async def delete(self, i: int) -> None:
        await self.store.delete(f"/registry/pods/bench/p{i:06d}")

    async def close(self) -> None:
        await self.store.close()


class SQLiteFloor(Target):
    """What any SQLite-backed store pays at least: one durable statement + commit per write,
    from asyncio through one writer thread, as the backend does it."""

    name = "sqlite-floor"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.conn: sqlite3.Connection | None = None

    def _run(self, sql: str, params: tuple[Any, ...]) -> Awaitable[None]:
        def op() -> None:
            assert self.conn is not None
            self.conn.execute("BEGIN")
            self.conn.execute(sql, params)
            self.conn.execute("COMMIT")

        return asyncio.get_running_loop().run_in_executor(self.executor, op)

    async def setup(self) -> None:
        def op() -> None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE kv (name TEXT PRIMARY KEY, value BLOB)")
            self.conn = conn

        await asyncio.get_running_loop().run_in_executor(self.executor, op)

    async def create(self, i: int) -> None:
        await self._run("INSERT INTO kv (name, value) VALUES (?, ?)", (f"p{i:06d}", VALUE))

    async def update(self, i: int) -> None:
        await self._run("UPDATE kv SET value = ? WHERE name = ?", (VALUE, f"p{i:06d}"))

    async def delete(self, i: int) -> None:
        await self._run("DELETE FROM kv WHERE name = ?", (f"p{i:06d}",))

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.executor.shutdown(wait=True)


class EtcdRaw(Target):
    """Plain Put/DeleteRange on the same stub and channel options the backend uses: etcd's
    own cost plus gRPC, without our Txn guards and result mapping."""

    name = "etcd-raw"

    def __init__(self, endpoint: str) -> None:
        self.channel = grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
        self.kv = rpc_pb2_grpc.KVStub(self.channel)  # type: ignore[no-untyped-call, unused-ignore]

    async def create(self, i: int) -> None:
        await self.kv.Put(rpc_pb2.PutRequest(key=f"/raw/p{i:06d}".encode(), value=VALUE))

    async def update(self, i: int) -> None:
        await self.kv.Put(rpc_pb2.PutRequest(key=f"/raw/p{i:06d}".encode(), value=VALUE))

    async def delete(self, i: int) -> None:
        await self.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=f"/raw/p{i:06d}".encode()))

    async def close(self) -> None:
        await self.channel.close(grace=None)


async def open_loop(operation: Callable[[int], Awaitable[None]], count: int, rate: float) -> Phase:
    """Issue operation(0..count-1) on schedule; latency from the scheduled start."""
    phase = Phase()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(i: int, scheduled: float) -> None:
        try:
            await operation(i)
        except Exception:
            phase.errors += 1
            return
        phase.latencies.append((loop.time() - scheduled) * 1000)

    tasks = []
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return phase


async def run_target(target: Target, rate: float, seconds: float) -> dict[str, Phase]:
    count = max(1, int(rate * seconds / len(OPS)))
    await target.setup()
    try:
        # A short warm-up on other keys: connections, statement caches, etcd's first fsyncs.
        for i in range(count, count + 20):
            await target.create(i)
        results = {}
        for op in OPS:
            results[op] = await open_loop(getattr(target, op), count, rate)
        return results
    finally:
        await target.close()


def report(rows: list[tuple[str, str, Phase]], floors: dict[str, str]) -> list[dict[str, Any]]:
    p50s = {(name, op): percentile(p.latencies, 50) for name, op, p in rows if p.latencies}
    p99s = {(name, op): percentile(p.latencies, 99) for name, op, p in rows if p.latencies}
    print(
        f"\n{'variant':<16} {'op':<7} {'n':>5} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  vs floor"
    )
    out = []
    for name, op, phase in rows:
        if not phase.latencies:
            print(f"{name:<16} {op:<7} {0:>5} {phase.errors:>4}  (all failed)")
            continue
        p50, p99, worst = p50s[name, op], p99s[name, op], max(phase.latencies)
        floor = floors.get(name)
        ratio = ""
        if floor and (floor, op) in p50s:
            ratio = f"p50 x{p50 / p50s[floor, op]:.2f}  p99 x{p99 / p99s[floor, op]:.2f}"
        print(
            f"{name:<16} {op:<7} {len(phase.latencies):>5} {phase.errors:>4} {p50:>8.2f} {p99:>8.2f} {worst:>8.2f}  {ratio}"
        )
        out.append(
            {
                "variant": name,
                "op": op,
                "n": len(phase.latencies),
                "errors": phase.errors,
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
                "max_ms": round(worst, 3),
            }
        )
    return out


async def bench(args: argparse.Namespace, folder: Path) -> int:
    rows: list[tuple[str, str, Phase]] = []
    targets: list[Callable[[], Target]] = [
        lambda: SQLiteFloor(folder / "floor.db"),
        lambda: StorageTarget("sqlite-backend", SQLiteStorage(folder / "state.db")),
    ]
    cluster = None
    if args.no_etcd:
        pass
    elif not etcd_available():
        print("etcd-server is not installed (/usr/bin/etcd): skipping the etcd variants", file=sys.stderr)
    else:
        cluster = start_etcd(folder / "etcd", members=args.members)
        endpoints = cluster.endpoints
        targets += [
            lambda: EtcdRaw(endpoints[0]),
            lambda: StorageTarget("etcd-backend", EtcdStorage(endpoints, prefix="/bench")),
        ]
    try:
        for make in targets:
            target = make()
            print(f"running {target.name}: {args.rate:g} requests/s for {args.seconds:g}s ...", flush=True)
            for op, phase in (await run_target(target, args.rate, args.seconds)).items():
                rows.append((target.name, op, phase))
    finally:
        if cluster is not None:
            cluster.stop()
    out = report(rows, {"sqlite-backend": "sqlite-floor", "etcd-backend": "etcd-raw"})
    print(
        json.dumps({"rate": args.rate, "seconds": args.seconds, "etcd_members": args.members, "results": out})
    )
    return 1 if any(p.errors for _, _, p in rows) else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="per variant, split over the 3 ops (10-20)"
    )
    parser.add_argument("--members", type=int, choices=(1, 3), default=1, help="etcd members (default 1)")
    parser.add_argument("--no-etcd", action="store_true", help="only the SQLite variants")
    parser.add_argument(
        "--dir", type=Path, default=None, help="parent of the temporary folder (default: $TMPDIR)"
    )
    args = parser.parse_args()
    if not 0 < args.rate <= 2000 or not 0 < args.seconds <= 60:
        parser.error("rate must be in (0, 2000] and seconds in (0, 60]: the benchmark is bounded")
    folder = Path(tempfile.mkdtemp(prefix="pinnace-bench-storage-", dir=args.dir))
    try:
        return asyncio.run(bench(args, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
