"""The host-local IPAM plugin: addresses from local ranges, remembered on disk.

Commands: ADD allocates one address per range set (all or nothing), DEL releases the
attachment's addresses (idempotent), CHECK confirms an allocation exists, GC releases every
allocation whose attachment is not in the runtime's valid list, STATUS says whether an ADD
could succeed (data directory usable, a free address in every range set).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cni_plugins.ipam_allocator import allocate
from cni_plugins.ipam_config import (
    IPAMConfig,
    load_ipam_config,
    parse_resolv_conf,
    rangeset_contains,
    rangeset_str,
)
from cni_plugins.ipam_store import Store
from cni_plugins.result import IPConfig, Result
from cni_plugins.spec import (
    ERR_INTERNAL,
    ERR_INVALID_CONFIG,
    ERR_IO_FAILURE,
    ERR_NOT_AVAILABLE,
    CniError,
    Invocation,
    check_known_args,
)

KNOWN_ARGS = frozenset({"IP"})


def valid_attachments(conf: Mapping[str, Any]) -> set[tuple[str, str]]:
    """GC's still-valid attachments; spec 1.1.0 and later texts use two key names."""
    out: set[tuple[str, str]] = set()
    for key in ("cni.dev/valid-attachments", "cni.dev/attachments"):
        items = conf.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise CniError(ERR_INVALID_CONFIG, f"{key}: expected a list, got {json.dumps(items)}")
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("containerID"), str):
                raise CniError(ERR_INVALID_CONFIG, f"{key}: invalid attachment {json.dumps(item)}")
            out.add((item["containerID"], str(item.get("ifname", ""))))
    return out


class HostLocal:
    """host-local, as an object the driver (skel) calls."""

    def add(self, inv: Invocation, conf: dict[str, Any]) -> Result:
        check_known_args(inv, KNOWN_ARGS)
        cfg = load_ipam_config(conf, inv)
        result = Result(routes=list(cfg.routes))
        if cfg.resolv_conf:
            result.dns = parse_resolv_conf(cfg.resolv_conf)
        store = Store(cfg.name, cfg.data_dir)
        wanted = list(cfg.requested)
        with store.locked():
            ips: list[IPConfig] = []
            try:
                for idx, rset in enumerate(cfg.ranges):
                    requested = next((ip for ip in wanted if rangeset_contains(rset, ip)), None)
                    if requested is not None:
                        wanted.remove(requested)
                    try:
                        ips.append(
                            allocate(
                                store,
                                rset,
                                range_id=idx,
                                container_id=inv.container_id,
                                ifname=inv.ifname,
                                requested=requested,
                            )
                        )
                    except CniError as exc:
                        raise CniError(
                            exc.code, f"failed to allocate for range {idx}: {exc.msg}", exc.details
                        ) from None
                if wanted:
                    raise CniError(
                        ERR_INVALID_CONFIG, f"failed to request IPs {', '.join(str(ip) for ip in wanted)}"
                    )
            except BaseException:
                for ipc in ips:
                    store.release(ipc.address.ip)
                raise
        result.ips = ips
        return result

    def delete(self, inv: Invocation, conf: dict[str, Any]) -> None:
        check_known_args(inv, KNOWN_ARGS)
        cfg = load_ipam_config(conf, inv)
        store = Store(cfg.name, cfg.data_dir)
        with store.locked():
            store.release_by_id(inv.container_id, inv.ifname)

    def check(self, inv: Invocation, conf: dict[str, Any]) -> None:
        check_known_args(inv, KNOWN_ARGS)
        cfg = load_ipam_config(conf, inv)
        store = Store(cfg.name, cfg.data_dir)
        with store.locked():
            held = store.find_by_id(inv.container_id, inv.ifname)
        if not held:
            raise CniError(
                ERR_INTERNAL, f"host-local: Failed to find address added by container {inv.container_id}"
            )
        missing = [
            rangeset_str(rset) for rset in cfg.ranges if not any(rangeset_contains(rset, ip) for ip in held)
        ]
        if missing:
            raise CniError(
                ERR_INTERNAL,
                f"host-local: container {inv.container_id} holds no address in range set {missing[0]}",
            )

    def gc(self, inv: Invocation, conf: dict[str, Any]) -> None:
        valid = valid_attachments(conf)
        valid_ids = {cid for cid, _ in valid}
        cfg = load_ipam_config(conf, inv)
        store = Store(cfg.name, cfg.data_dir)
        with store.locked():
            for ip, (cid, ifname) in store.allocations().items():
                keep = cid in valid_ids if not ifname else (cid, ifname) in valid
                if not keep:
                    store.release(ip)

    def status(self, inv: Invocation, conf: dict[str, Any]) -> None:
        cfg = load_ipam_config(conf, inv)
        self._check_writable(cfg)
        allocs = Store(cfg.name, cfg.data_dir, create=False).allocations()
        for rset in cfg.ranges:
            used = sum(1 for ip in allocs if rangeset_contains(rset, ip))
            if used >= sum(r.size() for r in rset):
                raise CniError(
                    ERR_NOT_AVAILABLE, f"no IP addresses available in range set: {rangeset_str(rset)}"
                )

    @staticmethod
    def _check_writable(cfg: IPAMConfig) -> None:
        """STATUS must not create anything: test the nearest existing directory instead."""
        path = Path(cfg.data_dir) / cfg.name
        while not path.exists() and path != path.parent:
            path = path.parent
        if not os.access(path, os.W_OK | os.X_OK):
            raise CniError(
                ERR_NOT_AVAILABLE, f"IPAM data directory {path} is not writable", str(ERR_IO_FAILURE)
            )


PLUGIN = HostLocal()
