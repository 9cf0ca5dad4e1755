"""Where the node's networking happens: a pool of threads that entered the node's network
namespace.

kube-proxy's API client may live in one namespace (the lab's apiserver listens on the root
namespace's loopback) while the node it serves is another netns. A network namespace is a
property of each thread (setns(2) with CLONE_NEWNET changes only the caller), and a socket
belongs to the namespace it was created in for its whole life. So every iptables call, every
child process (iptables-restore, conntrack: a child inherits the creating thread's namespace)
and every socket creation runs on these threads; the event loop then uses the sockets as any
other. With no netns configured the threads simply stay where the process is, so production
and the lab run the same code.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NodeNamespace:
    def __init__(self, path: str = "", workers: int = 4) -> None:
        self.path = path
        if path and not Path(path).exists():
            raise FileNotFoundError(f"network namespace {path} does not exist")
        initializer = (lambda: _setns(path)) if path else None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="node-netns", initializer=initializer)
        # Fail now, not at the first sync, if the namespace cannot be entered.
        self.call(lambda: None)

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn` in the node's namespace and wait for it (for non-async callers)."""
        return self._pool.submit(fn, *args).result()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def socket(self, family: int, kind: int) -> socket.socket:
        """A non-blocking socket that lives in the node's namespace."""

        def make() -> socket.socket:
            sock = socket.socket(family, kind)
            sock.setblocking(False)
            return sock

        return await self.run(make)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
