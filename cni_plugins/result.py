"""The CNI Success result, read from any supported version and written in the one asked for.

Results cross version lines (an IPAM plugin answers in the config's version, a runtime hands
back a cached prevResult), so they are held in one neutral form and converted at the edges.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cni_plugins.spec import ERR_DECODE, CniError, version_at_least

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Route attributes added by spec 1.1.0; older results drop them.
_ROUTE_EXTRAS_1_1 = ("mtu", "advmss", "priority", "table", "scope")


@dataclass
class Interface:
    """An interface the plugin created or touched; `sandbox` is empty for host interfaces."""

    name: str
    mac: str = ""
    sandbox: str = ""
    mtu: int = 0

    def to_dict(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.mac:
            out["mac"] = self.mac
        if self.mtu and version_at_least(version, "1.1.0"):
            out["mtu"] = self.mtu
        if self.sandbox:
            out["sandbox"] = self.sandbox
        return out


@dataclass
class IPConfig:
    """An address given to an interface; `interface` indexes the result's interfaces."""

    address: IPInterface
    gateway: IPAddress | None = None
    interface: int | None = None

    def to_dict(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not version_at_least(version, "1.0.0"):
            out["version"] = str(self.address.version)
        if self.interface is not None:
            out["interface"] = self.interface
        out["address"] = str(self.address)
        if self.gateway is not None:
            out["gateway"] = str(self.gateway)
        return out


@dataclass
class Route:
    """A route to install in the container; `gw` None means the address's gateway."""

    dst: IPNetwork
    gw: IPAddress | None = None
    extras: dict[str, int] = field(default_factory=dict)

    def to_dict(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"dst": str(self.dst)}
        if self.gw is not None:
            out["gw"] = str(self.gw)
        if version_at_least(version, "1.1.0"):
            out.update(self.extras)
        return out


@dataclass
class DNS:
    """DNS settings handed to the runtime, which writes resolv.conf."""

    nameservers: list[str] = field(default_factory=list)
    domain: str = ""
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.nameservers or self.domain or self.search or self.options)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.nameservers:
            out["nameservers"] = list(self.nameservers)
        if self.domain:
            out["domain"] = self.domain
        if self.search:
            out["search"] = list(self.search)
        if self.options:
            out["options"] = list(self.options)
        return out


@dataclass
class Result:
    """A Success result in version-neutral form."""

    interfaces: list[Interface] = field(default_factory=list)
    ips: list[IPConfig] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    dns: DNS = field(default_factory=DNS)

    def to_dict(self, version: str) -> dict[str, Any]:
        """The result as the spec of `version` writes it."""
        out: dict[str, Any] = {"cniVersion": version}
        if self.interfaces:
            out["interfaces"] = [i.to_dict(version) for i in self.interfaces]
        if self.ips:
            out["ips"] = [ip.to_dict(version) for ip in self.ips]
        if self.routes:
            out["routes"] = [r.to_dict(version) for r in self.routes]
        if not self.dns.is_empty():
            out["dns"] = self.dns.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """Parse a result of any supported version; a malformed one is a decode failure."""
        try:
            return cls(
                interfaces=[_interface(i) for i in data.get("interfaces") or []],
                ips=[_ipconfig(ip) for ip in data.get("ips") or []],
                routes=[parse_route(r) for r in data.get("routes") or []],
                dns=parse_dns(data.get("dns") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CniError(ERR_DECODE, f"failed to decode result: {exc}") from None


def _interface(data: Mapping[str, Any]) -> Interface:
    mtu = data.get("mtu", 0)
    return Interface(
        name=str(data["name"]),
        mac=str(data.get("mac", "")),
        sandbox=str(data.get("sandbox", "")),
        mtu=int(mtu) if mtu else 0,
    )


def _ipconfig(data: Mapping[str, Any]) -> IPConfig:
    gateway = data.get("gateway")
    interface = data.get("interface")
    return IPConfig(
        address=ipaddress.ip_interface(data["address"]),
        gateway=ipaddress.ip_address(gateway) if gateway else None,
        interface=int(interface) if interface is not None else None,
    )


def parse_route(data: Mapping[str, Any]) -> Route:
    """A route object as results and host-local's `routes` key write it."""
    gw = data.get("gw")
    extras = {k: int(data[k]) for k in _ROUTE_EXTRAS_1_1 if data.get(k) is not None}
    return Route(
        dst=ipaddress.ip_network(data["dst"], strict=False),
        gw=ipaddress.ip_address(gw) if gw else None,
        extras=extras,
    )


def parse_dns(data: Mapping[str, Any]) -> DNS:
    """A DNS object; absent lists stay empty."""
    return DNS(
        nameservers=[str(s) for s in data.get("nameservers") or []],
        domain=str(data.get("domain") or ""),
        search=[str(s) for s in data.get("search") or []],
        options=[str(s) for s in data.get("options") or []],
    )
