"""host-local's configuration: range sets, legacy single-range keys, routes, requested IPs.

The parsing and canonicalisation follow the reference plugin (containernetworking/plugins
plugins/ipam/host-local/backend/allocator/config.go and range.go) rule for rule, so a config
accepted or refused by one is accepted or refused by the other.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cni_plugins.result import DNS, IPAddress, IPNetwork, Route, parse_route
from cni_plugins.spec import ERR_INVALID_CONFIG, CniError, Invocation, cfg_str

DEFAULT_DATA_DIR = "/var/lib/cni/networks"


@dataclass(frozen=True)
class Range:
    """One allocatable range inside a subnet; start and end are inclusive."""

    subnet: IPNetwork
    range_start: IPAddress
    range_end: IPAddress
    gateway: IPAddress

    def contains(self, ip: IPAddress) -> bool:
        if ip.version != self.subnet.version or ip not in self.subnet:
            return False
        return int(self.range_start) <= int(ip) <= int(self.range_end)

    def overlaps(self, other: Range) -> bool:
        if self.subnet.version != other.subnet.version:
            return False
        return (
            self.contains(other.range_start)
            or self.contains(other.range_end)
            or other.contains(self.range_start)
            or other.contains(self.range_end)
        )

    def size(self) -> int:
        """How many addresses can be handed out (the gateway never is)."""
        count = int(self.range_end) - int(self.range_start) + 1
        if self.contains(self.gateway):
            count -= 1
        return count

    def __str__(self) -> str:
        return f"{self.range_start}-{self.range_end}"


RangeSet = tuple[Range, ...]


def rangeset_str(rset: RangeSet) -> str:
    """How the reference names a range set in its messages."""
    return ",".join(str(r) for r in rset)


def rangeset_contains(rset: RangeSet, ip: IPAddress) -> bool:
    return any(r.contains(ip) for r in rset)


@dataclass
class IPAMConfig:
    """A validated host-local configuration for one network."""

    name: str
    ranges: list[RangeSet]
    routes: list[Route] = field(default_factory=list)
    data_dir: str = DEFAULT_DATA_DIR
    resolv_conf: str = ""
    requested: list[IPAddress] = field(default_factory=list)


def _ip(value: Any, key: str) -> IPAddress:
    if not isinstance(value, str):
        raise CniError(ERR_INVALID_CONFIG, f"{key}: expected an IP address string, got {json.dumps(value)}")
    try:
        return ipaddress.ip_address(value.split("/")[0])
    except ValueError:
        raise CniError(ERR_INVALID_CONFIG, f"{key}: invalid IP address {value!r}") from None


def parse_range(obj: Mapping[str, Any]) -> Range:
    """Canonicalise a range object: defaults for gateway, start and end; reference messages."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"range must be an object, got {json.dumps(obj)}")
    raw = obj.get("subnet")
    if not isinstance(raw, str) or not raw:
        raise ValueError("missing subnet")
    try:
        iface = ipaddress.ip_interface(raw)
    except ValueError:
        raise ValueError(f"invalid CIDR address: {raw}") from None
    subnet = iface.network
    if subnet.prefixlen > subnet.max_prefixlen - 2:
        raise ValueError(f"Network {raw} too small to allocate from")
    if iface.ip != subnet.network_address:
        raise ValueError(
            f"Network has host bits set. For a subnet mask of length {subnet.prefixlen} "
            f"the network address is {subnet.network_address}"
        )
    gateway = _ip(obj["gateway"], "gateway") if obj.get("gateway") else subnet.network_address + 1
    start = _ip(obj["rangeStart"], "rangeStart") if obj.get("rangeStart") else subnet.network_address + 1
    if start.version != subnet.version or start not in subnet:
        raise ValueError(f"RangeStart {start} not in network {raw}")
    if obj.get("rangeEnd"):
        end = _ip(obj["rangeEnd"], "rangeEnd")
        if end.version != subnet.version or end not in subnet:
            raise ValueError(f"RangeEnd {end} not in network {raw}")
    else:
        end = subnet.broadcast_address - 1 if subnet.version == 4 else subnet.broadcast_address
    if gateway.version != subnet.version:
        raise ValueError(f"gateway {gateway} is not of the subnet's address family")
    return Range(subnet, start, end, gateway)


def parse_rangeset(items: Any) -> RangeSet:
    """A range set: one family, no two ranges overlapping."""
    if not isinstance(items, list) or not items:
        raise ValueError("empty range set")
    rset = tuple(parse_range(obj) for obj in items)
    if len({r.subnet.version for r in rset}) > 1:
        raise ValueError("mixed address families")
    for i, r1 in enumerate(rset):
        for r2 in rset[i + 1 :]:
            if r1.overlaps(r2):
                raise ValueError(f"subnets {r1.subnet} and {r2.subnet} overlap")
    return rset


def _requested_ips(conf: Mapping[str, Any], inv: Invocation) -> list[IPAddress]:
    """IPs asked for by CNI_ARGS IP=, args.cni.ips or runtimeConfig.ips (the `ips` capability)."""
    out: list[IPAddress] = []
    raw = inv.arg("IP")
    if raw:
        out.extend(_ip(item, "CNI_ARGS IP") for item in raw.split(",") if item)
    args = conf.get("args")
    if isinstance(args, Mapping):
        cni = args.get("cni")
        if isinstance(cni, Mapping) and isinstance(cni.get("ips"), list):
            out.extend(_ip(item, "args.cni.ips") for item in cni["ips"])
    runtime = conf.get("runtimeConfig")
    if isinstance(runtime, Mapping) and isinstance(runtime.get("ips"), list):
        out.extend(_ip(item, "runtimeConfig.ips") for item in runtime["ips"])
    return out


def load_ipam_config(conf: Mapping[str, Any], inv: Invocation) -> IPAMConfig:
    """Validate the `ipam` section of a network config into an IPAMConfig."""
    ipam = conf.get("ipam")
    if not isinstance(ipam, Mapping):
        raise CniError(ERR_INVALID_CONFIG, "IPAM config missing 'ipam' key")
    raw_sets: list[Any] = []
    runtime = conf.get("runtimeConfig")
    if isinstance(runtime, Mapping) and isinstance(runtime.get("ipRanges"), list):
        raw_sets.extend(runtime["ipRanges"])
    if ipam.get("subnet"):
        raw_sets.append([{k: ipam.get(k) for k in ("subnet", "rangeStart", "rangeEnd", "gateway")}])
    ranges = ipam.get("ranges", [])
    if not isinstance(ranges, list):
        raise CniError(ERR_INVALID_CONFIG, f"ipam.ranges: expected a list, got {json.dumps(ranges)}")
    raw_sets.extend(ranges)
    if not raw_sets:
        raise CniError(ERR_INVALID_CONFIG, "no IP ranges specified")
    sets: list[RangeSet] = []
    for i, items in enumerate(raw_sets):
        try:
            sets.append(parse_rangeset(items))
        except ValueError as exc:
            raise CniError(ERR_INVALID_CONFIG, f"invalid range set {i}: {exc}") from None
    for i, s1 in enumerate(sets):
        for j in range(i + 1, len(sets)):
            if any(r1.overlaps(r2) for r1 in s1 for r2 in sets[j]):
                raise CniError(ERR_INVALID_CONFIG, f"range set {i} overlaps with {j}")
    routes_raw = ipam.get("routes") or []
    if not isinstance(routes_raw, list):
        raise CniError(ERR_INVALID_CONFIG, f"ipam.routes: expected a list, got {json.dumps(routes_raw)}")
    try:
        routes = [parse_route(r) for r in routes_raw]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CniError(ERR_INVALID_CONFIG, f"ipam.routes: invalid route: {exc}") from None
    return IPAMConfig(
        name=str(conf["name"]),
        ranges=sets,
        routes=routes,
        data_dir=cfg_str(ipam, "dataDir") or DEFAULT_DATA_DIR,
        resolv_conf=cfg_str(ipam, "resolvConf"),
        requested=_requested_ips(conf, inv),
    )


def parse_resolv_conf(path: str) -> DNS:
    """DNS settings from a resolv.conf, as the reference host-local returns them."""
    dns = DNS()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CniError(ERR_INVALID_CONFIG, f"resolvConf: cannot read {path!r}: {exc.strerror}") from None
    for line in lines:
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        key, values = fields[0], fields[1:]
        if key == "nameserver":
            dns.nameservers.extend(values)
        elif key == "domain" and values:
            dns.domain = values[0]
        elif key == "search":
            dns.search = list(values)
        elif key == "options":
            dns.options.extend(values)
    return dns
