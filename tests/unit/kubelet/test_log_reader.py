"""The CRI log reader behind `kubectl logs`: content, tail, limit and follow, sent in batches
rather than a message per line."""

from __future__ import annotations

from pathlib import Path

from services.kubelet.logs import BATCH_BYTES, read_log


def _write(path: Path, lines: list[str]) -> None:
    with path.open("a") as f:
        for i, text in enumerate(lines):
            f.write(f"2026-11-22T08:00:{i % 60:02d}.123456789Z stdout F {text}\n")


async def _read(path: Path, **options: object) -> list[bytes]:
    return [chunk async for chunk in read_log(path, **options)]  # type: ignore[arg-type]


async def test_large_log_goes_out_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    lines = [f"line {i:05d} " + "x" * 80 for i in range(5000)]
    _write(path, lines)
    chunks = await _read(path)
    expected = "".join(f"{text}\n" for text in lines).encode()
    assert b"".join(chunks) == expected
    assert len(chunks) <= len(expected) // BATCH_BYTES + 1 and max(map(len, chunks)) < BATCH_BYTES + 100


async def test_tail_limit_and_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    _write(path, ["a", "b", "c"])
    assert b"".join(await _read(path, tail=2)) == b"b\nc\n"
    assert b"".join(await _read(path, limit_bytes=3)) == b"a\nb"
    assert b"".join(await _read(path, tail=1, timestamps=True)) == b"2026-11-22T08:00:02.123456789Z c\n"


async def test_follow_sends_what_is_there_then_drains_when_stopped(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    _write(path, ["first"])
    states = iter([True, False])

    async def running() -> bool:
        if next(states, False):
            _write(path, ["second", "third"])
            return True
        return False

    chunks = await _read(path, follow=True, running=running)
    assert chunks[0] == b"first\n" and b"".join(chunks) == b"first\nsecond\nthird\n"
