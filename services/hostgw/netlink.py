"""The routing table host-gw writes, over netlink (pyroute2).

host-gw marks every route it writes with its own routing protocol number (`proto 73`, shown
by `ip route show proto 73`), so after a restart it finds exactly the routes it owns, and
deletes those of nodes that went away while it was down, without touching anyone else's
routes. The service CIDR's device is a Linux bridge with no ports: always up, it takes a
route and drops what is sent to it after a failed ARP (with an ICMP "host unreachable" to the
sender), which is what a dummy device would do on kernels that have them.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Awaitable
from typing import Any, Protocol

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from services.hostgw.routes import DEVICE, UNREACHABLE, VIA, Route
from services.machinery.netns import socket_in

RTPROT_PINNACE = 73
RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1
RTN_UNREACHABLE = 7


async def _kernel(what: str, call: Awaitable[Any], *, ignore: int = 0) -> Any:
    """Await a pyroute2 request; a kernel refusal becomes an OSError naming the change."""
    try:
        return await call
    except NetlinkError as exc:
        if exc.code == ignore:
            return None
        raise OSError(exc.code, f"{what}: {os.strerror(exc.code)}") from None


class RouteTable(Protocol):
    """Where routes go; the netlink table below in production, a double in unit tests."""

    async def owned(self) -> dict[str, Route]:
        """Routes of the main table carrying host-gw's protocol, by destination."""
        ...

    async def replace(self, route: Route) -> None: ...

    async def delete(self, dst: str) -> None: ...

    async def ensure_device(self, name: str) -> None:
        """A portless bridge `name`, up (created if missing)."""
        ...

    async def close(self) -> None: ...


class NetlinkRouteTable:
    """The main table of the network namespace at `netns` ("" = this process's)."""

    def __init__(self, netns: str = "") -> None:
        sock = socket_in(netns, socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
        # groups=0: no multicast subscription, so no change notifications pile up unread.
        self.ipr = AsyncIPRoute(fileno=sock.detach(), groups=0)
        self._devices: dict[str, int] = {}

    async def close(self) -> None:
        self.ipr.close()

    async def _index(self, name: str) -> int:
        if name not in self._devices:
            found = await self.ipr.link_lookup(ifname=name)
            if not found:
                raise OSError(errno.ENODEV, f"device {name} does not exist")
            self._devices[name] = int(found[0])
        return self._devices[name]

    async def ensure_device(self, name: str) -> None:
        self._devices.pop(name, None)
        await _kernel(
            f"add bridge {name}", self.ipr.link("add", ifname=name, kind="bridge"), ignore=errno.EEXIST
        )
        await _kernel(f"set {name} up", self.ipr.link("set", index=await self._index(name), state="up"))

    async def owned(self) -> dict[str, Route]:
        names = {int(link["index"]): str(link.get("ifname")) async for link in await self.ipr.link("dump")}
        routes: dict[str, Route] = {}
        async for msg in await self.ipr.route("dump", family=socket.AF_INET, table=RT_TABLE_MAIN):
            if msg["proto"] != RTPROT_PINNACE or msg.get("table") != RT_TABLE_MAIN:
                continue
            dst = f"{msg.get('dst') or '0.0.0.0'}/{msg['dst_len']}"
            if msg["type"] == RTN_UNREACHABLE:
                routes[dst] = Route(dst, UNREACHABLE)
            elif msg.get("gateway"):
                routes[dst] = Route(dst, VIA, gateway=str(msg.get("gateway")))
            else:
                device = names.get(int(msg.get("oif") or 0), "")
                routes[dst] = Route(dst, DEVICE, device=device, src=str(msg.get("prefsrc") or ""))
        return routes

    async def replace(self, route: Route) -> None:
        spec: dict[str, Any] = {"dst": route.dst, "table": RT_TABLE_MAIN, "proto": RTPROT_PINNACE}
        if route.kind == UNREACHABLE:
            spec |= {"type": RTN_UNREACHABLE, "scope": RT_SCOPE_UNIVERSE}
        elif route.kind == VIA:
            spec |= {"type": RTN_UNICAST, "scope": RT_SCOPE_UNIVERSE, "gateway": route.gateway}
        elif route.kind == DEVICE:
            spec |= {"type": RTN_UNICAST, "scope": RT_SCOPE_LINK, "oif": await self._index(route.device)}
            if route.src:
                spec["prefsrc"] = route.src
        else:
            raise ValueError(f"unknown route kind {route.kind!r}")
        await _kernel(f"ip route replace {route}", self.ipr.route("replace", **spec))

    async def delete(self, dst: str) -> None:
        request = self.ipr.route("del", dst=dst, table=RT_TABLE_MAIN, proto=RTPROT_PINNACE)
        await _kernel(f"ip route del {dst}", request, ignore=errno.ESRCH)
