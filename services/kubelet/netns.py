"""Sockets in the node's network namespace. Probes (httpGet, tcpSocket to the pod IP) and the
runtime's streaming server are reachable only where the pod network lives; when that is not
the kubelet's own namespace (tests run the runtime in a "node" netns, docs/kubelet.md), the
sockets are created by one long-lived thread that entered the namespace with setns(2). A
socket keeps the namespace it was created in, so everything after creation (connect, I/O)
runs on the event loop as usual, and the rest of the process never leaves its namespace."""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
from concurrent.futures import ThreadPoolExecutor

CLONE_NEWNET = 0x40000000


def _enter(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


class SocketFactory:
    """Creates TCP sockets in a given network namespace ("" = the process's own)."""

    def __init__(self, netns_path: str = "") -> None:
        self.netns_path = netns_path
        self._executor: ThreadPoolExecutor | None = None
        if netns_path:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="node-netns", initializer=_enter, initargs=(netns_path,)
            )

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    async def socket(self, family: int = socket.AF_INET) -> socket.socket:
        if self._executor is None:
            sock = socket.socket(family, socket.SOCK_STREAM)
        else:
            loop = asyncio.get_running_loop()
            sock = await loop.run_in_executor(self._executor, socket.socket, family, socket.SOCK_STREAM)
        sock.setblocking(False)
        return sock

    async def open_connection(
        self, host: str, port: int, timeout: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = await self.socket(family)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)
