"""The small benchmark programs of the write path run and measure what they claim, on tiny
counts (no figures are checked: timing asserts have no place in tests)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.bench import grpc_floor
from tests.bench.bench_write_throughput import commit_per_write, group_commit


def test_cpu_seconds_of_this_process_grows_with_work() -> None:
    before = grpc_floor.cpu_seconds(os.getpid())
    deadline = before + 0.05
    while grpc_floor.cpu_seconds(os.getpid()) < deadline:
        sum(range(10_000))
    assert grpc_floor.cpu_seconds(os.getpid()) >= deadline


def test_the_grpc_floor_calls_a_real_echo_server(tmp_path: Path) -> None:
    floor = grpc_floor.measure(calls=200, parallel=8, workdir=tmp_path)
    assert floor.calls_per_second > 0 and floor.server_cpu_ms > 0
    assert not list(tmp_path.iterdir())  # the port file is gone with the server


def test_write_throughput_variants_write_what_they_count(tmp_path: Path) -> None:
    assert commit_per_write(tmp_path / "floor.db", 50) > 0
    rate, per_commit = asyncio.run(group_commit(tmp_path / "group.db", 100, 10))
    assert rate > 0 and 1 <= per_commit <= 100
