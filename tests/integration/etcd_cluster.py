"""Real etcd processes for tests: one member or a three-member cluster on loopback.

Tests talk to a real etcd (DESIGN.md: real parts, not imitations), so this helper starts
Debian's /usr/bin/etcd on 127.0.0.1 with ports picked free and a data dir under the caller's
temp dir, and offers what failure tests need: kill -9 one member, restart it, stop all. It
only ever signals the processes it started, by their pid, and an atexit hook stops any a
crashed test left behind. It is plain synchronous code so session fixtures and async tests
(through asyncio.to_thread) can both use it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

ETCD_BINARY = "/usr/bin/etcd"
HOST = "127.0.0.1"
# Fast elections keep failover tests short; loopback latency is far below these.
HEARTBEAT_MS = 50
ELECTION_MS = 500
START_TIMEOUT = 30.0
STOP_GRACE = 2.0
_START_ATTEMPTS = 3
_LIVE: set[subprocess.Popen[bytes]] = set()


def etcd_available(binary: str = ETCD_BINARY) -> bool:
    return Path(binary).is_file() and os.access(binary, os.X_OK)


def free_ports(count: int) -> list[int]:
    """Ports the kernel reports free on loopback, all distinct (held open until all are picked)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class EtcdCluster:
    """Handle on the started members; `endpoints` is what an EtcdStorage connects to."""

    root: Path
    members: list[Member]
    token: str
    binary: str = ETCD_BINARY
    extra_args: list[str] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def member_at(self, endpoint: str) -> int:
        return next(i for i, m in enumerate(self.members) if m.endpoint == endpoint)

    def _command(self, member: Member, state: str) -> list[str]:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        return [
            self.binary,
            f"--name={member.name}",
            f"--data-dir={member.data_dir}",
            f"--listen-client-urls={member.client_url}",
            f"--advertise-client-urls={member.client_url}",
            f"--listen-peer-urls={member.peer_url}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--initial-cluster={initial}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={self.token}",
            f"--heartbeat-interval={HEARTBEAT_MS}",
            f"--election-timeout={ELECTION_MS}",
            "--logger=zap",
            "--log-level=warn",
            "--log-outputs=stderr",
            *self.extra_args,
        ]

    def _spawn(self, index: int, state: str) -> None:
        member = self.members[index]
        if member.running:
            raise RuntimeError(f"{member.name} is already running")
        member.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # Flags only: ETCD_* variables from the environment would override or clash with them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        with member.log_path.open("ab") as log:
            member.process = subprocess.Popen(
                self._command(member, state), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        _LIVE.add(member.process)

    def wait_healthy(self, index: int, timeout: float = START_TIMEOUT) -> None:
        """Until the member answers /health with a leader; raises with its log on failure."""
        member = self.members[index]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not member.running:
                raise RuntimeError(f"etcd {member.name} exited early:\n{self.log_tail(index)}")
            try:
                with urllib.request.urlopen(f"{member.client_url}/health", timeout=1.0) as answer:
                    if b'"health":"true"' in answer.read():
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"etcd {member.name} not healthy after {timeout}s:\n{self.log_tail(index)}")

    def log_tail(self, index: int, lines: int = 20) -> str:
        path = self.members[index].log_path
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self, index: int) -> None:
        """kill -9 one member (its data dir stays, so `restart` brings it back)."""
        self._signal(index, signal.SIGKILL)

    def terminate(self, index: int) -> None:
        self._signal(index, signal.SIGTERM)

    def _signal(self, index: int, sig: signal.Signals, grace: float = 10.0) -> None:
        process = self.members[index].process
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, sig)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        _LIVE.discard(process)

    def restart(self, index: int, timeout: float = START_TIMEOUT) -> None:
        """Start a stopped member again on its data dir; it rejoins and catches up."""
        self._spawn(index, "existing")
        self.wait_healthy(index, timeout)

    def stop(self) -> None:
        """Stop every member and remove their data dirs and logs.

        SIGTERM with a short grace, then SIGKILL: the data is thrown away, and a member
        shutting down without a quorum can spend seconds trying to hand leadership over.
        """
        for index in range(len(self.members)):
            self._signal(index, signal.SIGTERM, grace=STOP_GRACE)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def require_etcd() -> None:
    """The integration tier's answer to a machine without etcd: a skip, or a failure under
    PINNACE_REQUIRE_INTEGRATION=1 (tests/integration/conftest.missing)."""
    from tests.integration.conftest import missing

    if not etcd_available():
        missing(f"{ETCD_BINARY} is not installed (Debian package etcd-server)")


def start_etcd(
    tmp_dir: Path, members: int = 1, *, binary: str = ETCD_BINARY, extra_args: list[str] | None = None
) -> EtcdCluster:
    """Start `members` (1 or 3) etcd processes under tmp_dir and wait until all are healthy.

    A port picked free can be taken by someone else before etcd binds it; then the whole
    start is retried with new ports, a bounded number of times.
    """
    if members not in (1, 3):
        raise ValueError("members must be 1 or 3")
    last: Exception | None = None
    for attempt in range(_START_ATTEMPTS):
        root = Path(tmp_dir) / f"etcd-{uuid.uuid4().hex[:8]}"
        ports = free_ports(2 * members)
        cluster = EtcdCluster(
            root=root,
            members=[
                Member(
                    name=f"m{i}",
                    client_port=ports[2 * i],
                    peer_port=ports[2 * i + 1],
                    data_dir=root / f"m{i}.etcd",
                    log_path=root / f"m{i}.log",
                )
                for i in range(members)
            ],
            token=f"pinnace-test-{root.name}",
            binary=binary,
            extra_args=list(extra_args or []),
        )
        try:
            for index in range(members):
                cluster._spawn(index, "new")
            for index in range(members):
                cluster.wait_healthy(index)
        except (RuntimeError, TimeoutError) as exc:
            last = exc
            cluster.stop()
            if attempt + 1 < _START_ATTEMPTS:
                continue
            raise
        return cluster
    raise RuntimeError(f"etcd did not start: {last}")


@atexit.register
def _stop_leftovers() -> None:
    """A test that crashed before its teardown must not leave etcd processes running."""
    for process in list(_LIVE):
        with contextlib.suppress(ProcessLookupError):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        _LIVE.discard(process)
