"""Container logs in the CRI format the kubelet reads: one `<RFC3339Nano> <stream> <P|F>
<text>` line per log record, P for a partial line (docker splits lines longer than 16 KiB),
F for the record that ends one.

A LogCopier thread follows a container's output through Docker's logs API (which keeps
everything in the container's json-file log, so nothing is lost between StartContainer and the
copier attaching) and appends CRI lines to the container's log path. The file itself is the
copier's only state: a restarted shim reads the last timestamp in it and resumes after it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from services.machinery.logs import get_logger

log = get_logger(__name__)

STREAMS = {1: "stdout", 2: "stderr"}
_HEADER = struct.Struct(">BxxxI")


def format_line(timestamp: str, stream: str, text: bytes, partial: bool) -> bytes:
    return b"%s %s %s %s\n" % (timestamp.encode(), stream.encode(), b"P" if partial else b"F", text)


def parse_line(line: bytes) -> tuple[str, str, bool, bytes]:
    """The inverse of format_line (for tests and for resuming): timestamp, stream, partial, text."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    parts += [b""] * (4 - len(parts))
    return parts[0].decode(), parts[1].decode(), parts[2] == b"P", parts[3]


def split_record(payload: bytes) -> tuple[str, bytes, bool]:
    """One frame of Docker's logs API with timestamps=1: `<RFC3339Nano> <text>[\\n]`."""
    timestamp, _, rest = payload.partition(b" ")
    if rest.endswith(b"\n"):
        return timestamp.decode(), rest[:-1], False
    return timestamp.decode(), rest, True


def to_cri_lines(stream: str, payload: bytes) -> bytes:
    timestamp, text, partial = split_record(payload)
    return format_line(timestamp, stream, text, partial)


def timestamp_ns(rfc3339: str) -> int:
    """RFC 3339 with up to nanoseconds (Docker's and the CRI log's format) to Unix nanoseconds."""
    if not rfc3339 or rfc3339.startswith("0001-01-01"):
        return 0
    text = rfc3339.rstrip("Z")
    offset = ""
    for sign in ("+", "-"):
        pos = text.rfind(sign)
        if pos > 10:
            text, offset = text[:pos], text[pos:]
            break
    base, _, fraction = text.partition(".")
    moment = datetime.fromisoformat(base + (offset or "+00:00"))
    return int(moment.timestamp()) * 1_000_000_000 + int((fraction + "000000000")[:9])


def docker_since(timestamp: str) -> str:
    """Docker's `since` parameter (seconds.nanoseconds) for a log timestamp."""
    ns = timestamp_ns(timestamp)
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def last_timestamp(path: Path) -> str:
    """The timestamp of the last complete line of a CRI log file, or '' when there is none."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return ""
    for line in reversed(tail.splitlines()):
        if line.count(b" ") >= 2:
            return line.split(b" ", 1)[0].decode(errors="replace")
    return ""


def frames(raw: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Demultiplex Docker's stdout/stderr stream: 8-byte header (stream, size), then payload."""
    while True:
        header = _read_exact(raw, _HEADER.size)
        if header is None:
            return
        stream, size = _HEADER.unpack(header)
        payload = _read_exact(raw, size)
        if payload is None:
            return
        yield stream, payload


def tty_frames(raw: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """A TTY container's log stream has no multiplexing headers: one record per line."""
    pending = b""
    while True:
        chunk = raw.read1(65536) if hasattr(raw, "read1") else raw.read(65536)
        if not chunk:
            if pending:
                yield 1, pending
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield 1, line + b"\n"


def _read_exact(raw: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = raw.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class LogCopier:
    """Copies one container's output into its CRI log file until the container exits."""

    def __init__(self, api: Any, container_id: str, path: Path, *, tty: bool = False) -> None:
        self.api = api
        self.tty = tty
        self.container_id = container_id
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._response: Any = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"log-{container_id[:12]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def reopen(self) -> None:
        """After the kubelet rotated the file: close it, the next line opens a fresh one."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._open()

    def stop(self) -> None:
        self._stopped.set()
        response = self._response
        if response is not None:
            # Shut the socket down first: it wakes the copier thread's blocked read. Closing
            # the stream alone would wait for the buffered reader's lock, which that read holds
            # (the shim then hung on SIGTERM while a container was running).
            with contextlib.suppress(Exception):
                response.raw.connection.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                response.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab", buffering=0)
        return self._file

    def _run(self) -> None:
        try:
            self._copy()
        except Exception as exc:
            if not self._stopped.is_set():
                log.warning("log copier failed", container_id=self.container_id, error=str(exc))
        finally:
            with self._lock:
                if self._file is not None:
                    self._file.close()
                    self._file = None

    def _copy(self) -> None:
        resume_after = last_timestamp(self.path)
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "follow": 1, "timestamps": 1}
        if resume_after:
            params["since"] = docker_since(resume_after)
        resume_ns = timestamp_ns(resume_after)
        url = self.api._url("/containers/{0}/logs", self.container_id)
        response = self.api._get(url, params=params, stream=True, timeout=None)
        self._response = response
        self.api._raise_for_status(response)
        with self._lock:
            self._open()
        records = tty_frames(response.raw) if self.tty else frames(response.raw)
        for stream, payload in records:
            if self._stopped.is_set():
                return
            timestamp, text, partial = split_record(payload)
            if resume_ns and timestamp_ns(timestamp) <= resume_ns:
                continue
            line = format_line(timestamp, STREAMS.get(stream, "stdout"), text, partial)
            with self._lock:
                self._open().write(line)


def now_rfc3339() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond * 1000:09d}Z"
