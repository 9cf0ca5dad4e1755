"""Opening a TCP connection inside another network namespace (a pod's, for PortForward): a
short-lived thread enters the namespace with setns(2), connects, and the socket keeps
belonging to that namespace after the thread is gone. setns only moves the calling thread,
so the rest of the process never leaves its own namespace."""

from __future__ import annotations

import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def connect_in_netns(netns_path: str, host: str, port: int, timeout: float = 5.0) -> socket.socket:
    outcome: dict[str, object] = {}

    def run() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(netns_path, os.O_RDONLY)
        try:
            _setns(target)
            try:
                outcome["socket"] = socket.create_connection((host, port), timeout=timeout)
            finally:
                _setns(own)
        except OSError as exc:
            outcome["error"] = exc
        finally:
            os.close(target)
            os.close(own)

    thread = threading.Thread(target=run, name="netns-connect", daemon=True)
    thread.start()
    thread.join(timeout + 1)
    error = outcome.get("error")
    if isinstance(error, OSError):
        raise error
    sock = outcome.get("socket")
    if not isinstance(sock, socket.socket):
        raise TimeoutError(f"connect to {host}:{port} in {netns_path} timed out")
    sock.settimeout(None)
    return sock
