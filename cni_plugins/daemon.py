"""The CNI plugin daemon: runs plugin calls for thin clients without paying interpreter start-up.

Design: a prefork server. The master imports pyroute2 and python-iptables once, warms them
up with a real ADD/CHECK/DEL inside a private network namespace of its own (so lazy imports,
libxtables extensions and code paths are hot), and keeps a few idle workers blocked in
accept(). A worker serves one call at a time: it checks the peer is root, moves into the
caller's network namespace (the fd the client sent), runs the plugin exactly as the
executable would (same environment, same stdin), moves back to its own namespace and waits
for the next call. Workers are reused (a fresh fork pays ~3 ms of copy-on-write faults on its
first call) but retire after MAX_CALLS calls or on any error, and calls run in parallel across
workers. Nothing a call leaves behind is read by the next: sockets, tables and the
environment are set up per call.

The master never touches a real namespace: it lives in its private one from start-up on.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import struct
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from cni_plugins import netns, registry
from cni_plugins.install import install
from cni_plugins.thin import DEFAULT_SOCKET, decode_request, encode_response

MAX_REQUEST = 16 * 1024 * 1024
MAX_CALLS = 500  # calls a worker serves before it retires
_BUSY, _IDLE = b"B", b"I"
STOP_GRACE = 10.0  # seconds busy workers get to finish when the daemon stops


class Daemon:
    """One listening socket, a pool of idle single-use workers, a master that refills it."""

    def __init__(self, socket_path: str, *, spares: int = 4, max_workers: int = 64) -> None:
        self.socket_path = socket_path
        self.spares = spares
        self.max_workers = max_workers
        self.workers: dict[int, bool] = {}  # pid -> busy
        self.stopping = False

    def serve(self, *, warm: bool = True) -> None:
        """Run until SIGTERM/SIGINT."""
        netns.unshare_net()
        if warm:
            warm_up()
        gc.collect()
        gc.freeze()  # keep the warmed heap shared copy-on-write with the workers
        listener = self._listen()
        busy_r, busy_w = os.pipe()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda _s, _f: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        try:
            while not self.stopping:
                self._reap()
                idle = sum(1 for busy in self.workers.values() if not busy)
                while idle < self.spares and len(self.workers) < self.max_workers:
                    pid = os.fork()
                    if pid == 0:
                        os.close(busy_r)
                        os.close(wake_r)
                        os.close(wake_w)
                        _worker(listener, busy_w)
                    self.workers[pid] = False
                    idle += 1
                self._wait(busy_r, wake_r)
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                Path(self.socket_path).unlink()
            self._shutdown()

    def _listen(self) -> socket.socket:
        path = Path(self.socket_path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(old)
        listener.listen(128)
        return listener

    def _wait(self, busy_r: int, wake_r: int) -> None:
        """Sleep until a worker takes a call, a child exits or a signal comes (1 s at most)."""
        import select  # noqa: PLC0415 - only the master loop needs it

        with contextlib.suppress(InterruptedError):
            ready, _, _ = select.select([busy_r, wake_r], [], [], 1.0)
            if busy_r in ready:
                data = os.read(busy_r, 5 * 512)
                for i in range(0, len(data) - 4, 5):
                    pid = int.from_bytes(data[i : i + 4], "big")
                    if pid in self.workers:
                        self.workers[pid] = data[i + 4 : i + 5] == _BUSY
            if wake_r in ready:
                os.read(wake_r, 4096)

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.workers.clear()
                return
            if pid == 0:
                return
            self.workers.pop(pid, None)

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _shutdown(self) -> None:
        """Idle workers go at once; busy ones get STOP_GRACE seconds to finish their call."""
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while self.workers and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.01)
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap()


class _RetireError(Exception):
    """Raised in an idle worker by SIGTERM: leave accept() and exit."""


def _worker(listener: socket.socket, state_w: int) -> None:
    """Serve calls one at a time until MAX_CALLS, SIGTERM or an error, then exit (never returns).

    SIGTERM while idle exits at once; while busy, the call finishes first.
    """
    state = {"busy": False, "stop": False}

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        state["stop"] = True
        if not state["busy"]:
            raise _RetireError

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    signal.set_wakeup_fd(-1)
    me = os.getpid().to_bytes(4, "big")
    code = 0
    try:
        home = netns.current_netns_fd()
        for _ in range(MAX_CALLS):
            conn, _ = listener.accept()
            state["busy"] = True
            os.write(state_w, me + _BUSY)
            with conn:
                try:
                    _serve_one(conn)
                finally:
                    netns.setns(home)  # back to the private namespace, or die trying
            state["busy"] = False
            if state["stop"]:
                break
            os.write(state_w, me + _IDLE)
    except _RetireError:
        code = 0
    except BaseException:  # a worker must exit, whatever happened
        code = 1
    finally:
        os._exit(code)


def _serve_one(conn: socket.socket) -> None:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    if uid not in (0, os.getuid()):
        return
    fds = array.array("i")
    msg, ancdata, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    chunks = [msg]
    size = len(msg)
    while msg and size <= MAX_REQUEST:
        msg = conn.recv(65536)
        chunks.append(msg)
        size += len(msg)
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return
    name, env, stdin = decode_request(b"".join(chunks))
    if name not in registry.PLUGINS:
        os.close(fds[0])
        return
    try:
        netns.setns(fds[0])
    finally:
        os.close(fds[0])
    os.environ.clear()
    os.environ.update(env)
    out = registry.run(name, env, stdin)
    conn.sendall(encode_response(out.code, out.stdout, out.stderr))


def warm_up() -> None:
    """One full ADD/CHECK/DEL (bridge, host-local, ipMasq, loopback) in private namespaces.

    Runs in the master after it unshared its own netns, so it creates nothing anywhere real.
    """
    tmp = Path(tempfile.mkdtemp(prefix="pcni-warm-"))
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        os.close(ready_r)
        os.close(hold_w)
        netns.unshare_net()
        os.write(ready_w, b"1")
        os.read(hold_r, 1)
        os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    try:
        os.read(ready_r, 1)
        bin_dir = tmp / "bin"
        install(bin_dir, socket_path="")
        conf = {
            "cniVersion": "1.0.0",
            "name": "pcni-warmup",
            "type": "pinnace-bridge",
            "bridge": "pcniwarm0",
            "isGateway": True,
            "ipMasq": True,
            "hairpinMode": True,
            "ipam": {
                "type": "pinnace-host-local",
                "subnet": "10.255.255.0/29",
                "dataDir": str(tmp / "ipam"),
                "routes": [{"dst": "0.0.0.0/0"}],
            },
        }
        env = {
            "CNI_CONTAINERID": "warmup",
            "CNI_NETNS": f"/proc/{helper}/ns/net",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(bin_dir),
        }
        stdin = json.dumps(conf).encode()
        add = registry.run("bridge", {**env, "CNI_COMMAND": "ADD"}, stdin)
        if add.code == 0:
            conf["prevResult"] = json.loads(add.stdout)
            registry.run("bridge", {**env, "CNI_COMMAND": "CHECK"}, json.dumps(conf).encode())
        registry.run("bridge", {**env, "CNI_COMMAND": "DEL"}, stdin)
        lo = json.dumps({"cniVersion": "1.0.0", "name": "lo", "type": "pinnace-loopback"}).encode()
        registry.run("loopback", {**env, "CNI_COMMAND": "ADD"}, lo)
    finally:
        os.close(hold_w)
        os.close(ready_r)
        os.waitpid(helper, 0)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """`pinnace-cni-daemon [--socket PATH] [--spares N]`."""
    parser = argparse.ArgumentParser(description="Serve pinnace CNI plugin calls for the thin executables.")
    parser.add_argument(
        "--socket", default=DEFAULT_SOCKET, help=f"unix socket path (default {DEFAULT_SOCKET})"
    )
    parser.add_argument("--spares", type=int, default=4, help="idle workers kept ready")
    parser.add_argument("--max-workers", type=int, default=64, help="workers alive at most")
    parser.add_argument("--no-warm-up", action="store_true", help="skip the warm-up ADD/DEL")
    args = parser.parse_args(argv)
    Daemon(args.socket, spares=args.spares, max_workers=args.max_workers).serve(warm=not args.no_warm_up)
    return 0
