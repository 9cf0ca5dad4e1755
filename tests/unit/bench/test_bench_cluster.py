"""The pure parts of tests/bench/bench_cluster.py: /proc parsing, process trees, CPU % and
the run summaries its figures are made of."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench.bench_cluster import (
    PHASES,
    Stat,
    cpu_percent,
    descendants,
    parse_stat,
    phase_durations,
    status_kib,
    summary,
)

# A real line's layout (proc(5)): pid (comm) state ppid ... utime stime cutime cstime ...
LINE = "4242 (python) S 17 4242 4242 0 -1 4194560 9000 0 0 0 120 30 7 3 20 0 5 0 123456 0 0"


def test_parse_stat_reads_ppid_and_all_four_cpu_counters() -> None:
    assert parse_stat(LINE) == Stat(pid=4242, comm="python", ppid=17, ticks=120 + 30 + 7 + 3)


def test_parse_stat_counts_fields_from_the_last_parenthesis() -> None:
    tricky = LINE.replace("(python)", "(a) b (c) d)")
    stat = parse_stat(tricky)
    assert (stat.comm, stat.ppid, stat.ticks) == ("a) b (c) d", 17, 160)


def test_parse_stat_of_this_process() -> None:
    stat = parse_stat(Path(f"/proc/{os.getpid()}/stat").read_text())
    assert stat.pid == os.getpid() and stat.ppid == os.getppid() and stat.ticks >= 0


@pytest.mark.parametrize("bad", ["", "4242 python S 1", "4242 (python) S 17 1 2"])
def test_parse_stat_refuses_what_is_not_a_stat_line(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_stat(bad)


def test_descendants_follow_the_tree_and_leave_others_out() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 11, 20: 1, 21: 20}
    assert descendants(parents, 10) == [10, 11, 12, 13]
    assert descendants(parents, 13) == [13]
    assert descendants(parents, 99) == [99]  # gone: only itself, no strangers


def test_status_kib_finds_the_key_exactly() -> None:
    text = "Name:\tpython\nVmRSSX:\t1 kB\nVmRSS:\t  105820 kB\nRss:  9 kB\nPss:     74753 kB\n"
    assert status_kib(text, "VmRSS") == 105820
    assert status_kib(text, "Pss") == 74753
    assert status_kib(text, "VmSwap") == 0


def test_cpu_percent_is_of_one_core() -> None:
    assert cpu_percent(100, 100, 10.0) == pytest.approx(10.0)
    assert cpu_percent(0, 100, 300.0) == 0.0
    with pytest.raises(ValueError):
        cpu_percent(1, 100, 0.0)


def test_summary_is_median_and_max() -> None:
    assert summary([3.0, 1.0, 2.0]) == {"median": 2.0, "max": 3.0}
    assert summary([4.0, 1.0]) == {"median": 2.5, "max": 4.0}
    with pytest.raises(ValueError):
        summary([])


def test_phase_durations_are_each_phase_own_time() -> None:
    ends = dict(zip(PHASES, [10.5, 12.5, 13.0, 14.0, 14.25], strict=True))
    durations = phase_durations(ends, start=10.0)
    assert durations == dict(zip(PHASES, [0.5, 2.0, 0.5, 1.0, 0.25], strict=True))
    assert sum(durations.values()) == pytest.approx(4.25)
    with pytest.raises(KeyError):
        phase_durations({"namespaces": 1.0}, start=0.0)
