"""A TCP relay from this process's loopback into a lab host's namespace.

The test process lives in the root namespace, which has no route to the lab LAN (and must not
get one, DESIGN.md section 7). The relay listens on 127.0.0.1 here and opens each upstream
connection from a socket born in a lab host's namespace, so a gRPC channel to the relay's
address reaches the apiserver as if it were run on that host. Threads, not the caller's event
loop, carry the bytes: the relay works from synchronous code and from any event loop.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from services.machinery.netns import socket_in


def open_in(netns_path: str, ip: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to ip:port made from inside the namespace at `netns_path`."""
    sock = socket_in(netns_path, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((ip, port))
    except OSError:
        sock.close()
        raise
    return sock


class Relay:
    def __init__(self, netns_path: str, ip: str, port: int) -> None:
        self.netns_path, self.target = netns_path, (ip, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self._closed = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="lab-relay", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = open_in(self.netns_path, *self.target, timeout=10)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {downstream, upstream}
            threading.Thread(target=self._connection, args=(downstream, upstream), daemon=True).start()

    def _connection(self, downstream: socket.socket, upstream: socket.socket) -> None:
        back = threading.Thread(target=_pump, args=(upstream, downstream), daemon=True)
        back.start()
        _pump(downstream, upstream)
        back.join()
        with self._lock:
            self._sockets -= {downstream, upstream}
        downstream.close()
        upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until end of stream, then pass the half-close on."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
