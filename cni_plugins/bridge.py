"""The bridge plugin: a veth per container, its host end on a Linux bridge, IPs from IPAM.

Behaviour follows the reference plugin (containernetworking/plugins plugins/main/bridge) so the
two leave the same observable state, with one deliberate difference in ordering: IPAM runs
and the bridge name is checked before anything is created, and a failed ADD removes what it
made, so bad input leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from cni_plugins import invoke, ipmasq, netlink, netns
from cni_plugins.netlink import Rtnl
from cni_plugins.result import DNS, Interface, IPConfig, IPInterface, Result, Route, parse_dns
from cni_plugins.spec import (
    ERR_INTERNAL,
    ERR_INVALID_CONFIG,
    ERR_INVALID_ENV,
    ERR_UNSUPPORTED_FIELD,
    CniError,
    Invocation,
    cfg_bool,
    cfg_int,
    cfg_str,
    check_known_args,
)

KNOWN_ARGS = frozenset({"MAC", "IP"})
DEFAULT_BRIDGE = "cni0"
HOST_IFACES = 3  # bridge, host veth, container veth: the container's is index 2
_MAC_RE = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
_VETH_NAME_TRIES = 4

# Reference keys this plugin does not implement; set to a non-default value they are refused
# (error 2) rather than silently ignored.
_UNSUPPORTED: dict[str, Any] = {
    "vlan": 0,
    "vlanTrunk": None,
    "macspoofchk": False,
    "disableContainerInterface": False,
    "portIsolation": False,
}


@dataclass
class BridgeConf:
    """The bridge plugin's keys, validated."""

    network: str
    bridge: str = DEFAULT_BRIDGE
    is_gateway: bool = False
    is_default_gateway: bool = False
    force_address: bool = False
    ip_masq: bool = False
    mtu: int = 0
    hairpin: bool = False
    promisc: bool = False
    ipam_type: str = ""
    mac: str = ""
    dns: DNS = field(default_factory=DNS)


def load_conf(conf: dict[str, Any], inv: Invocation) -> BridgeConf:
    """Validate the bridge config (and the MAC from CNI_ARGS, args or runtimeConfig)."""
    for key, default in _UNSUPPORTED.items():
        value = conf.get(key)
        if value not in (None, default, [], {}):
            raise CniError(ERR_UNSUPPORTED_FIELD, f"unsupported field {key!r}: {json.dumps(value)}")
    backend = conf.get("ipMasqBackend")
    if backend not in (None, "", "iptables"):
        raise CniError(ERR_UNSUPPORTED_FIELD, f"unsupported field 'ipMasqBackend': {json.dumps(backend)}")
    c = BridgeConf(
        network=str(conf["name"]),
        bridge=cfg_str(conf, "bridge") or DEFAULT_BRIDGE,
        is_gateway=cfg_bool(conf, "isGateway"),
        is_default_gateway=cfg_bool(conf, "isDefaultGateway"),
        force_address=cfg_bool(conf, "forceAddress"),
        ip_masq=cfg_bool(conf, "ipMasq"),
        mtu=cfg_int(conf, "mtu"),
        hairpin=cfg_bool(conf, "hairpinMode"),
        promisc=cfg_bool(conf, "promiscMode"),
    )
    if c.is_default_gateway:
        c.is_gateway = True
    if c.hairpin and c.promisc:
        raise CniError(ERR_INVALID_CONFIG, "cannot set hairpin mode and promiscuous mode at the same time")
    if len(c.bridge) > 15 or "/" in c.bridge or any(ch.isspace() for ch in c.bridge):
        raise CniError(ERR_INVALID_CONFIG, f"bridge: invalid interface name {c.bridge!r}")
    if c.mtu < 0 or c.mtu > 65535:
        raise CniError(ERR_INVALID_CONFIG, f"mtu: out of range: {c.mtu}")
    ipam = conf.get("ipam")
    if ipam is not None and not isinstance(ipam, dict):
        raise CniError(ERR_INVALID_CONFIG, f"ipam: expected an object, got {json.dumps(ipam)}")
    c.ipam_type = cfg_str(ipam or {}, "type")
    dns = conf.get("dns")
    if isinstance(dns, dict):
        c.dns = parse_dns(dns)
    c.mac = _requested_mac(conf, inv)
    return c


def _requested_mac(conf: dict[str, Any], inv: Invocation) -> str:
    mac = inv.arg("MAC") or ""
    args = conf.get("args")
    if isinstance(args, dict) and isinstance(args.get("cni"), dict) and args["cni"].get("mac"):
        mac = str(args["cni"]["mac"])
    runtime = conf.get("runtimeConfig")
    if isinstance(runtime, dict) and runtime.get("mac"):
        mac = str(runtime["mac"])
    if mac and not _MAC_RE.match(mac):
        raise CniError(ERR_INVALID_CONFIG, f"invalid MAC address {mac!r}")
    return mac.lower()


def _enable_forwarding(version: int) -> None:
    """Turn on IP forwarding in the current netns, as isGateway requires."""
    path = "/proc/sys/net/ipv4/ip_forward" if version == 4 else "/proc/sys/net/ipv6/conf/all/forwarding"
    with Path(path).open("r+b") as f:
        if f.read(1) != b"1":
            f.seek(0)
            f.write(b"1")


def _gateways(c: BridgeConf, ips: list[IPConfig], routes: list[Route]) -> list[IPInterface]:
    """Fill in gateways and the default route as the reference's calcGateways does."""
    gws: list[IPInterface] = []
    for ipc in ips:
        ipc.interface = 2
        if ipc.gateway is None and c.is_gateway:
            ipc.gateway = ipc.address.network.network_address + 1
        if ipc.gateway is None:
            continue
        if c.is_default_gateway:
            default = ipaddress.ip_network("0.0.0.0/0" if ipc.address.version == 4 else "::/0")
            if not any(r.dst == default for r in routes):
                routes.append(Route(dst=default, gw=ipc.gateway))
        if c.is_gateway:
            gw = ipaddress.ip_interface(f"{ipc.gateway}/{ipc.address.network.prefixlen}")
            if gw not in gws:
                gws.append(gw)
    return gws


def _ensure_bridge_addr(ipr: Rtnl, br: netlink.Link, gw: IPInterface, force: bool) -> None:
    """Put the gateway address on the bridge; another address there needs forceAddress."""
    family = netlink.AF_INET if gw.version == 4 else netlink.AF_INET6
    present = netlink.addresses(ipr, br.index, family)
    if gw in present:
        return
    for addr in present:
        if addr.is_link_local:
            continue
        if gw.version == 4 or gw.ip in addr.network or addr.ip in gw.network:
            if not force:
                raise CniError(
                    ERR_INVALID_CONFIG,
                    f"{br.name!r} already has an IP address different from {gw} (forceAddress is not set)",
                )
            netlink.del_address(ipr, br.index, addr)
    netlink.add_address(ipr, br.index, gw, f"bridge {br.name}")
    if br.mac and br.mac != "00:00:00:00:00:00":
        netlink.set_mac(ipr, br.index, br.mac)  # pin the MAC so it does not follow port churn


class Bridge:
    """The bridge plugin, as an object the driver (skel) calls."""

    def add(self, inv: Invocation, conf: dict[str, Any]) -> Result:
        check_known_args(inv, KNOWN_ARGS)
        c = load_conf(conf, inv)
        prev = Result.from_dict(conf["prevResult"]) if isinstance(conf.get("prevResult"), dict) else None
        fd = netns.open_netns(inv.netns)
        try:
            if netns.same_netns(fd):
                raise CniError(
                    ERR_INVALID_ENV, "CNI_NETNS: plugin's netns and CNI_NETNS must not be the same"
                )
            ipr = netlink.open_socket()
            try:
                result = self._add(inv, c, fd, ipr)
            finally:
                ipr.close()
        finally:
            os.close(fd)
        if prev is not None:
            result = _merge(result, prev)
        return result

    def _add(self, inv: Invocation, c: BridgeConf, fd: int, ipr: Rtnl) -> Result:
        br = netlink.get_link(ipr, c.bridge)
        if br is not None and br.kind != "bridge":
            raise CniError(ERR_INVALID_CONFIG, f"bridge {c.bridge!r} already exists but is not a bridge")
        ipam: Result | None = None
        if c.ipam_type:
            raw = invoke.delegate(c.ipam_type, "ADD", inv.stdin, inv)
            ipam = Result.from_dict(raw or {})
        host_index = 0
        masq_chain = ""
        try:
            if ipam is not None and not ipam.ips:
                raise CniError(ERR_INTERNAL, "IPAM plugin returned missing IP config")
            if br is None:
                br = netlink.create_bridge(ipr, c.bridge, c.mtu)
            if not br.up or (c.promisc and not br.promisc):
                flags = netlink.IFF_UP | (netlink.IFF_PROMISC if c.promisc else 0)
                netlink.set_flags(ipr, br.index, flags, flags, f"bridge {c.bridge}")
            host_name, host_mac, cont_mac = "", netlink.random_mac(), c.mac or netlink.random_mac()
            for _ in range(_VETH_NAME_TRIES):
                host_name = "veth" + os.urandom(4).hex()
                try:
                    host_index = netlink.create_veth(
                        ipr,
                        host_name=host_name,
                        host_mac=host_mac,
                        peer_name=inv.ifname,
                        peer_mac=cont_mac,
                        peer_netns_fd=fd,
                        mtu=c.mtu,
                        master=br.index,
                    )
                    break
                except NetlinkError as exc:
                    if exc.code != 17:  # EEXIST: the container name, or (rarely) our random host name
                        raise netlink.fail("failed to create veth pair", exc) from None
                    with netlink.socket_in(fd) as cipr:
                        if netlink.get_link(cipr, inv.ifname) is not None:
                            raise CniError(
                                ERR_INVALID_ENV,
                                f"CNI_IFNAME: container veth name provided ({inv.ifname}) already exists",
                            ) from None
            else:
                raise CniError(ERR_INTERNAL, "failed to find a free host veth name")
            if c.hairpin:
                netlink.set_hairpin(ipr, host_index, True)
            result = Result(
                interfaces=[
                    Interface(c.bridge, br.mac),
                    Interface(host_name, host_mac),
                    Interface(inv.ifname, cont_mac, sandbox=inv.netns),
                ]
            )
            gws: list[IPInterface] = []
            if ipam is not None:
                result.ips = ipam.ips
                result.routes = list(ipam.routes)
                result.dns = ipam.dns
                gws = _gateways(c, result.ips, result.routes)
            if not c.dns.is_empty():
                result.dns = c.dns
            self._configure_container(inv, fd, result)
            for gw in gws:
                _ensure_bridge_addr(ipr, br, gw, c.force_address)
                _enable_forwarding(gw.version)
            if c.ip_masq and result.ips:
                masq_chain = ipmasq.chain_name(c.network, inv.container_id)
                text = ipmasq.comment(c.network, inv.container_id)
                for ipc in result.ips:
                    ipmasq.setup(ipc.address, masq_chain, text)
            return result
        except BaseException:
            _rollback(inv, c, ipr, host_index=host_index, chain=masq_chain, ipam=ipam is not None)
            raise

    @staticmethod
    def _configure_container(inv: Invocation, fd: int, result: Result) -> None:
        """Addresses, link up and routes on the container side (the reference's ConfigureIface)."""
        with netlink.socket_in(fd) as cipr:
            link = netlink.get_link(cipr, inv.ifname)
            if link is None:
                raise CniError(ERR_INTERNAL, f"container interface {inv.ifname} vanished")
            for ipc in result.ips:
                netlink.add_address(cipr, link.index, ipc.address, inv.ifname)
            if not link.up:
                netlink.set_up(cipr, link.index, inv.ifname)
            gateways = {ipc.address.version: ipc.gateway for ipc in result.ips if ipc.gateway is not None}
            for route in result.routes:
                gw = route.gw if route.gw is not None else gateways.get(route.dst.version)
                netlink.add_route(cipr, link.index, route.dst, gw)

    def delete(self, inv: Invocation, conf: dict[str, Any]) -> None:
        check_known_args(inv, KNOWN_ARGS)
        c = load_conf(conf, inv)
        families = {4, 6}
        if inv.netns:
            try:
                fd = netns.open_netns(inv.netns)
            except CniError as exc:
                if not netns.is_missing_netns_error(exc):
                    raise
                fd = -1
            if fd >= 0:
                try:
                    families = self._delete_container_link(inv, fd)
                finally:
                    os.close(fd)
        if c.ipam_type:
            invoke.delegate(c.ipam_type, "DEL", inv.stdin, inv)
        if c.ip_masq:
            chain = ipmasq.chain_name(c.network, inv.container_id)
            ipmasq.teardown(chain, ipv6=False)
            if 6 in families:
                # Without the interface we cannot know the family; a host without an IPv6
                # nat table then must not turn an idempotent DEL into a failure.
                with contextlib.suppress(CniError):
                    ipmasq.teardown(chain, ipv6=True)

    @staticmethod
    def _delete_container_link(inv: Invocation, fd: int) -> set[int]:
        """Delete the container's veth (taking its peer along); families it had addresses in."""
        with netlink.socket_in(fd) as cipr:
            link = netlink.get_link(cipr, inv.ifname)
            if link is None:
                return {4, 6}
            families: set[int] = {
                a.version for a in netlink.addresses(cipr, link.index) if not a.is_link_local
            }
            netlink.delete_link(cipr, link.index)
        return families or {4}

    def check(self, inv: Invocation, conf: dict[str, Any]) -> None:
        check_known_args(inv, KNOWN_ARGS)
        c = load_conf(conf, inv)
        if not isinstance(conf.get("prevResult"), dict):
            raise CniError(ERR_INVALID_CONFIG, "Required prevResult missing")
        if c.ipam_type:
            invoke.delegate(c.ipam_type, "CHECK", inv.stdin, inv)
        prev = Result.from_dict(conf["prevResult"])
        fd = netns.open_netns(inv.netns)
        try:
            ipr = netlink.open_socket()
            try:
                _check_state(inv, c, prev, fd, ipr)
            finally:
                ipr.close()
        finally:
            os.close(fd)
        if c.ip_masq and prev.ips and not ipmasq.exists(ipmasq.chain_name(c.network, inv.container_id)):
            raise CniError(ERR_INTERNAL, "ipMasq chain for this container is missing")

    def gc(self, inv: Invocation, conf: dict[str, Any]) -> None:
        c = load_conf(conf, inv)
        if c.ipam_type:
            invoke.delegate(c.ipam_type, "GC", inv.stdin, inv)
        if c.ip_masq:
            from cni_plugins.host_local import valid_attachments  # noqa: PLC0415 - only GC needs it

            valid_ids = {cid for cid, _ in valid_attachments(conf)}
            ipmasq.gc(c.network, valid_ids)

    def status(self, inv: Invocation, conf: dict[str, Any]) -> None:
        c = load_conf(conf, inv)
        if c.ipam_type:
            invoke.delegate(c.ipam_type, "STATUS", inv.stdin, inv)


def _rollback(inv: Invocation, c: BridgeConf, ipr: Rtnl, *, host_index: int, chain: str, ipam: bool) -> None:
    """Undo a failed ADD: veth pair, NAT chain, IPAM allocation. Best effort, errors dropped."""
    if host_index:
        with contextlib.suppress(CniError):
            netlink.delete_link(ipr, host_index)
    if chain:
        with contextlib.suppress(CniError):
            ipmasq.teardown(chain)
    if ipam:
        with contextlib.suppress(CniError):
            invoke.delegate(c.ipam_type, "DEL", inv.stdin, inv)


def _merge(ours: Result, prev: Result) -> Result:
    """Chain prevResult: our interfaces and IPs first (the pod's primary address), then prev's."""
    shift = len(ours.interfaces)
    for ipc in prev.ips:
        if ipc.interface is not None:
            ipc.interface += shift
    return Result(
        interfaces=ours.interfaces + prev.interfaces,
        ips=ours.ips + prev.ips,
        routes=ours.routes + [r for r in prev.routes if r not in ours.routes],
        dns=ours.dns if not ours.dns.is_empty() else prev.dns,
    )


def _check_state(inv: Invocation, c: BridgeConf, prev: Result, fd: int, ipr: Rtnl) -> None:
    """CHECK: the links, addresses and routes in prevResult are all still there."""
    br = netlink.get_link(ipr, c.bridge)
    if br is None or br.kind != "bridge":
        raise CniError(ERR_INTERNAL, f"bridge {c.bridge!r} not found or not a bridge")
    if c.promisc and not br.promisc:
        raise CniError(ERR_INTERNAL, f"bridge {c.bridge!r} is not in promiscuous mode")
    cont_idx = next(
        (i for i, itf in enumerate(prev.interfaces) if itf.name == inv.ifname and itf.sandbox == inv.netns),
        None,
    )
    if cont_idx is None:
        raise CniError(ERR_INTERNAL, f"prevResult has no interface {inv.ifname} in {inv.netns}")
    want = prev.interfaces[cont_idx]
    with netlink.socket_in(fd) as cipr:
        link = netlink.get_link(cipr, inv.ifname)
        if link is None:
            raise CniError(ERR_INTERNAL, f"container interface {inv.ifname} not found")
        if link.kind != "veth":
            raise CniError(
                ERR_INTERNAL, f"container interface {inv.ifname} is a {link.kind or 'device'}, not a veth"
            )
        if want.mac and link.mac.lower() != want.mac.lower():
            raise CniError(ERR_INTERNAL, f"interface {inv.ifname} MAC {link.mac} does not match {want.mac}")
        present = set(netlink.addresses(cipr, link.index))
        for ipc in prev.ips:
            if ipc.interface == cont_idx and ipc.address not in present:
                raise CniError(ERR_INTERNAL, f"address {ipc.address} not found on {inv.ifname}")
        for route in prev.routes:
            family = netlink.AF_INET if route.dst.version == 4 else netlink.AF_INET6
            if not any(dst == route.dst for dst, _ in netlink.routes(cipr, link.index, family)):
                raise CniError(ERR_INTERNAL, f"route to {route.dst} not found on {inv.ifname}")
        peer = link.peer_index
    host = netlink.get_link(ipr, index=peer) if peer else None
    if host is None or host.master != br.index:
        raise CniError(ERR_INTERNAL, f"the host end of {inv.ifname} is not attached to bridge {c.bridge!r}")
    if host.hairpin != c.hairpin:
        raise CniError(ERR_INTERNAL, f"hairpin mode of {host.name} does not match hairpinMode={c.hairpin}")


PLUGIN = Bridge()
