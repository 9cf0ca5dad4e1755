"""Sockets born in another network namespace.

A network namespace is a property of each thread (setns(2) with CLONE_NEWNET changes only the
caller) and a socket belongs for its whole life to the namespace it was created in. So a
program can keep its API client where it runs and still act inside a node's namespace: a
short-lived thread enters the namespace, creates the socket, and hands it back; everything
after that (connect, netlink requests, I/O on the event loop) works as with any socket.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000


def enter(path: str) -> None:
    """Move the calling thread into the network namespace at `path` (/run/netns/NAME, /proc/PID/ns/net)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def socket_in(path: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside the namespace at `path` ("" = the caller's own)."""
    if not path:
        return socket.socket(family, kind, proto)
    if not Path(path).exists():
        raise FileNotFoundError(f"network namespace {path} does not exist")
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def create() -> None:
        try:
            enter(path)
            made.append(socket.socket(family, kind, proto))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=create, name="netns-socket")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]
