"""Round-robin address allocation over a range set, the reference host-local's order.

Allocation resumes after `last_reserved_ip.N`, walks to the end of the range, moves to the
next range of the set, wraps around and gives up when it is back where it started; the
gateway is never handed out. Matching the order exactly keeps the two plugins interleavable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from cni_plugins.ipam_config import RangeSet, rangeset_contains, rangeset_str
from cni_plugins.ipam_store import Store
from cni_plugins.result import IPAddress, IPConfig, IPInterface
from cni_plugins.spec import ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_TRY_AGAIN_LATER, CniError


def iterate(rset: RangeSet, last: IPAddress | None) -> Iterator[tuple[int, IPAddress]]:
    """Candidate (range index, IP) pairs in allocation order, each at most once."""
    if last is not None and rangeset_contains(rset, last):
        idx = next(i for i, r in enumerate(rset) if r.contains(last))
        cur: IPAddress | None = last
    else:
        idx, cur = 0, None
    start_idx = idx
    start_ip: IPAddress | None = None
    while True:
        r = rset[idx]
        if cur is None:
            cur = r.range_start
        elif cur == r.range_end:
            idx = (idx + 1) % len(rset)
            r = rset[idx]
            cur = r.range_start
        else:
            cur = cur + 1
        if start_ip is None:
            start_ip = cur
        elif idx == start_idx and cur == start_ip:
            return
        if cur != r.gateway:
            yield idx, cur


def allocate(
    store: Store,
    rset: RangeSet,
    *,
    range_id: int,
    container_id: str,
    ifname: str,
    requested: IPAddress | None = None,
) -> IPConfig:
    """Reserve one address of `rset` for the attachment; the caller holds the store lock."""
    if requested is not None:
        for r in rset:
            if r.contains(requested):
                if requested == r.gateway:
                    raise CniError(ERR_INVALID_CONFIG, f"requested ip {requested} is subnet's gateway")
                if not store.reserve(container_id, ifname, requested, range_id):
                    raise CniError(
                        ERR_INTERNAL,
                        f"requested IP address {requested} is not available in range set "
                        f"{rangeset_str(rset)}",
                    )
                return IPConfig(address=_iface(requested, r.subnet.prefixlen), gateway=r.gateway)
        raise CniError(ERR_INVALID_CONFIG, f"requested ip {requested} is not in any range")
    for ip in store.find_by_id(container_id, ifname):
        if rangeset_contains(rset, ip):
            raise CniError(
                ERR_INTERNAL,
                f"{ip} has been allocated to {container_id}, duplicate allocation is not allowed",
            )
    for idx, ip in iterate(rset, store.last_reserved(range_id)):
        if store.reserve(container_id, ifname, ip, range_id):
            r = rset[idx]
            return IPConfig(address=_iface(ip, r.subnet.prefixlen), gateway=r.gateway)
    raise CniError(ERR_TRY_AGAIN_LATER, f"no IP addresses available in range set: {rangeset_str(rset)}")


def _iface(ip: IPAddress, prefixlen: int) -> IPInterface:
    return ipaddress.ip_interface(f"{ip}/{prefixlen}")
