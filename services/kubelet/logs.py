"""Reading a container's CRI log file (`<RFC3339Nano> <stream> <P|F> <text>` per line, as the
runtime writes it) for `kubectl logs`: tail, since, timestamps, limit, and follow (new lines
as they arrive, until the container has stopped and the file is drained). Lines go out in
batches of up to BATCH_BYTES, whatever is available at once, so a large log is a few messages
rather than one per line (a gRPC message per line capped reads at well under 1 MiB/s)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

FOLLOW_POLL = 0.2
BATCH_BYTES = 64 * 1024


def parse_line(line: bytes) -> tuple[str, str, bool, bytes] | None:
    """(timestamp, stream, partial, content) of one CRI log line."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    content = parts[3] if len(parts) == 4 else b""
    return parts[0].decode(errors="replace"), parts[1].decode(errors="replace"), parts[2] == b"P", content


def _timestamp(text: str) -> float:
    """RFC 3339 with nanoseconds to seconds (Python's parser takes at most microseconds)."""
    head, _, rest = text.partition(".")
    fraction = ""
    zone = "Z"
    if rest:
        digits = "".join(ch for ch in rest if ch.isdigit())
        fraction = digits[:6]
        zone = rest[len(digits) :] or "Z"
    stamp = f"{head}.{fraction or '0'}{'+00:00' if zone == 'Z' else zone}"
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0


def render(entry: tuple[str, str, bool, bytes], timestamps: bool) -> bytes:
    stamp, _, partial, content = entry
    out = content if partial else content + b"\n"
    return (stamp.encode() + b" " + out) if timestamps else out


async def read_log(
    path: Path,
    *,
    tail: int | None = None,
    since: float | None = None,
    timestamps: bool = False,
    limit_bytes: int | None = None,
    follow: bool = False,
    running: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[bytes]:
    sent = 0
    batch = bytearray()
    with path.open("rb") as f:
        entries: deque[tuple[str, str, bool, bytes]] | list[tuple[str, str, bool, bytes]]
        entries = deque(maxlen=tail) if tail is not None else []
        if tail == 0:
            entries = deque(maxlen=0)
        for line in f:
            parsed = parse_line(line)
            if parsed is None or (since is not None and _timestamp(parsed[0]) < since):
                continue
            entries.append(parsed)
        for entry in entries:
            chunk = render(entry, timestamps)
            if limit_bytes is not None and sent + len(chunk) > limit_bytes:
                yield bytes(batch + chunk[: limit_bytes - sent])
                return
            sent += len(chunk)
            batch += chunk
            if len(batch) >= BATCH_BYTES:
                yield bytes(batch)
                batch.clear()
        if batch:
            yield bytes(batch)
            batch.clear()
        if not follow:
            return
        pending = b""
        while True:
            line = f.readline()
            if line:
                pending += line
                if not pending.endswith(b"\n"):
                    continue
                parsed = parse_line(pending)
                pending = b""
                if parsed is None:
                    continue
                chunk = render(parsed, timestamps)
                if limit_bytes is not None and sent + len(chunk) > limit_bytes:
                    yield bytes(batch + chunk[: limit_bytes - sent])
                    return
                sent += len(chunk)
                batch += chunk
                if len(batch) >= BATCH_BYTES:
                    yield bytes(batch)
                    batch.clear()
                continue
            if batch:  # everything written so far has been read: send it before waiting
                yield bytes(batch)
                batch.clear()
            if running is not None and not await running():
                rest = f.read()
                lines = (parse_line(raw) for raw in (pending + rest).splitlines())
                tail_end = b"".join(render(p, timestamps) for p in lines if p is not None)
                if tail_end:
                    yield tail_end
                return
            await asyncio.sleep(FOLLOW_POLL)
