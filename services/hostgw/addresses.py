"""The node's own address when the operator names none: what `pinnace server` and `pinnace
agent` register as the Node's InternalIP and what other nodes route pods through."""

from __future__ import annotations

import socket

from pyroute2 import AsyncIPRoute

RT_SCOPE_UNIVERSE = 0


async def node_address() -> str:
    """The first IPv4 address of the device holding the default route, else the first global
    IPv4 address of any device (a lab host has no default route), else 127.0.0.1."""
    async with AsyncIPRoute(groups=0) as ipr:
        default_devices = [
            int(route.get("oif") or 0)
            async for route in await ipr.route("dump", family=socket.AF_INET, table=254)
            if route["dst_len"] == 0 and route.get("oif")
        ]
        addresses = [
            (int(msg["index"]), str(msg.get("address")))
            async for msg in await ipr.addr("dump", family=socket.AF_INET)
            if msg["scope"] == RT_SCOPE_UNIVERSE and msg.get("address")
        ]
    for device in default_devices:
        for index, address in addresses:
            if index == device:
                return address
    return addresses[0][1] if addresses else "127.0.0.1"
