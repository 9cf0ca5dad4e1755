"""Writing the userspace mode's rules with python-iptables (libiptc on the legacy tables).

Each call works on fresh table handles (so they are opened in the calling thread's network
namespace and see the kernel's current rules), makes all its changes in memory and commits
once per table: libiptc rewrites a whole table on every commit, so batching a sync into one
commit is what keeps it affordable. The xtables lock is held meanwhile, like iptables(8) does,
so an operator's iptables-legacy command cannot interleave with our commit.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import iptc

from services.proxy.userspace.portal_rules import JUMPS, OWNED_CHAINS, PortalRule

XTABLES_LOCK = "/run/xtables.lock"


@contextmanager
def _xtables_lock() -> Iterator[None]:
    with open(XTABLES_LOCK, "a") as lock:  # noqa: PTH123
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def to_iptc(rule: PortalRule) -> Any:
    entry = iptc.Rule()
    comment = entry.create_match("comment")
    comment.comment = rule.comment
    if rule.protocol:
        entry.protocol = rule.protocol
        proto = entry.create_match(rule.protocol)
        proto.dport = str(rule.dport)
    if rule.destination:
        entry.dst = rule.destination
    if rule.physdev_not_in:
        entry.create_match("physdev").physdev_is_in = "!"
    if rule.dst_local:
        entry.create_match("addrtype").dst_type = "LOCAL"
    if rule.state_new:
        entry.create_match("state").state = "NEW"
    target = entry.create_target(rule.target)
    if rule.target == "REDIRECT":
        target.to_ports = rule.to
    elif rule.target == "DNAT":
        target.to_destination = rule.to
    return entry


@functools.lru_cache(maxsize=1 << 17)
def compile_rule(rule: PortalRule) -> tuple[bytes, bytes]:
    """The rule as libiptc's entry and its delete mask.

    python-iptables' Rule.final_check() serializes every match and target and parses them back
    (`_update_parameters`) before running the xtables final checks: ~0.7 ms a rule, wasted on
    rules we just parsed. Running only the final checks gives byte-identical entries (unit
    tested), and caching the bytes makes appending the same portal again (every full sync)
    cost nothing but the libiptc call."""
    entry = to_iptc(rule)
    for part in (entry.target, *entry.matches):
        if part._module:
            part._final_check()
    return bytes(entry.rule), bytes(entry.mask)


def _buffer(data: bytes) -> Any:
    return (ctypes.c_ubyte * len(data)).from_buffer_copy(data)


def _append(table: Any, rule: PortalRule, *, prepend: bool = False) -> None:
    entry = _buffer(compile_rule(rule)[0])
    if prepend:
        table.insert_entry(rule.chain, entry, 0)
    else:
        table.append_entry(rule.chain, entry)


def _delete(table: Any, rule: PortalRule) -> None:
    entry, mask = compile_rule(rule)
    table.delete_entry(rule.chain, _buffer(entry), _buffer(mask))


def _tables(names: Iterable[str]) -> dict[str, Any]:
    tables = {}
    for name in names:
        table = iptc.Table(name, autocommit=False)
        table.refresh()
        tables[name] = table
    return tables


def _commit(tables: dict[str, Any], touched: set[str]) -> None:
    for name in sorted(touched):
        tables[name].commit()


def ensure_and_flush(rules: Iterable[PortalRule]) -> None:
    """Start of a run, and every full sync: our chains and the jumps to them exist, our chains
    hold exactly `rules` (whatever a previous run or an operator left is replaced)."""
    with _xtables_lock():
        tables = _tables(OWNED_CHAINS)
        for table_name, chains in OWNED_CHAINS.items():
            table = tables[table_name]
            for chain in chains:
                if table.is_chain(chain):
                    table.flush_entries(chain)
                else:
                    table.create_chain(chain)
        for jump in JUMPS:
            chain = iptc.Chain(tables[jump.table], jump.chain)
            if not any(r.target.name == jump.target for r in chain.rules):
                _append(tables[jump.table], jump, prepend=jump.prepend)
        for rule in rules:
            _append(tables[rule.table], rule)
        _commit(tables, set(OWNED_CHAINS))


def update(removed: Iterable[PortalRule], added: Iterable[PortalRule]) -> None:
    """A partial sync: delete and append single rules, one commit per touched table.
    A rule that is not there raises (the caller then does a full sync)."""
    removed, added = list(removed), list(added)
    touched = {r.table for r in removed} | {r.table for r in added}
    if not touched:
        return
    with _xtables_lock():
        tables = _tables(touched)
        try:
            for rule in removed:
                _delete(tables[rule.table], rule)
            for rule in added:
                _append(tables[rule.table], rule)
            _commit(tables, touched)
        except iptc.IPTCError:
            for table in tables.values():
                table.refresh()  # drop the half-made changes
            raise
