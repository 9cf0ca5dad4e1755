"""Holding node ports open: a bound socket per NodePort (and local external IP port), as
Kubernetes' openLocalPort does, so no other program on the node can take a port a service
answers on, and a port already taken is reported at once."""

from __future__ import annotations

import socket

import structlog

from services.proxy.netns import NodeNamespace

log = structlog.get_logger("proxy.localports")

LocalPort = tuple[str, int, str]  # (ip or "", port, "tcp"|"udp")


def _open(port: LocalPort) -> socket.socket:
    ip, number, proto = port
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip or "0.0.0.0", number))
        if proto == "tcp":
            sock.listen(1)
    except OSError:
        sock.close()
        raise
    return sock


class LocalPorts:
    def __init__(self, netns: NodeNamespace) -> None:
        self.netns = netns
        self.held: dict[LocalPort, socket.socket] = {}

    async def sync(self, wanted: set[LocalPort]) -> None:
        for port in [p for p in self.held if p not in wanted]:
            self.held.pop(port).close()
        for port in wanted - self.held.keys():
            try:
                self.held[port] = await self.netns.run(_open, port)
            except OSError as exc:
                log.warning(
                    "cannot hold local port", ip=port[0], port=port[1], protocol=port[2], error=str(exc)
                )

    def close(self) -> None:
        for sock in self.held.values():
            sock.close()
        self.held.clear()
