"""The loopback plugin: bring `lo` up in the container (CNI_IFNAME is ignored, as upstream).

In a chain it passes prevResult through unchanged, so it can sit anywhere in a conflist.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from cni_plugins import netlink, netns
from cni_plugins.result import Interface, IPConfig, Result
from cni_plugins.spec import ERR_INTERNAL, CniError, Invocation

LOOPBACK = "lo"


class Loopback:
    """loopback, as an object the driver (skel) calls."""

    def add(self, inv: Invocation, conf: dict[str, Any]) -> Result:
        fd = netns.open_netns(inv.netns)
        try:
            with netlink.socket_in(fd) as ipr:
                link = netlink.get_link(ipr, LOOPBACK)
                if link is None:
                    raise CniError(ERR_INTERNAL, "no loopback interface in the container")
                netlink.set_up(ipr, link.index, LOOPBACK)
                addrs = netlink.addresses(ipr, link.index)
        finally:
            os.close(fd)
        for addr in addrs:
            if not addr.ip.is_loopback:
                raise CniError(ERR_INTERNAL, f"loopback interface found with non-loopback address {addr.ip}")
        if isinstance(conf.get("prevResult"), dict):
            return Result.from_dict(conf["prevResult"])
        result = Result(interfaces=[Interface(LOOPBACK, "00:00:00:00:00:00", sandbox=inv.netns)])
        for version in (4, 6):
            first = next((a for a in addrs if a.version == version), None)
            if first is not None:
                result.ips.append(IPConfig(address=first, interface=0))
        if not addrs:
            result.ips.append(IPConfig(address=ipaddress.ip_interface("127.0.0.1/8"), interface=0))
        return result

    def delete(self, inv: Invocation, conf: dict[str, Any]) -> None:
        if not inv.netns:
            return
        try:
            fd = netns.open_netns(inv.netns)
        except CniError as exc:
            if netns.is_missing_netns_error(exc):
                return
            raise
        try:
            with netlink.socket_in(fd) as ipr:
                link = netlink.get_link(ipr, LOOPBACK)
                if link is not None:
                    netlink.set_flags(ipr, link.index, 0, netlink.IFF_UP, LOOPBACK)
        finally:
            os.close(fd)

    def check(self, inv: Invocation, conf: dict[str, Any]) -> None:
        fd = netns.open_netns(inv.netns)
        try:
            with netlink.socket_in(fd) as ipr:
                link = netlink.get_link(ipr, LOOPBACK)
        finally:
            os.close(fd)
        if link is None or not link.up:
            raise CniError(ERR_INTERNAL, "loopback interface is down")

    def gc(self, inv: Invocation, conf: dict[str, Any]) -> None:
        """Nothing outlives a container's netns, so there is nothing to collect."""

    def status(self, inv: Invocation, conf: dict[str, Any]) -> None:
        """Always ready."""


PLUGIN = Loopback()
