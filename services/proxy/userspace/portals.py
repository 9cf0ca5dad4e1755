"""Writing the userspace mode's rules with python-iptables (libiptc on the legacy tables).

Each call works on fresh table handles (so they are opened in the calling thread's network
namespace and see the kernel's current rules), makes all its changes in memory and commits
once per table: libiptc rewrites a whole table on every commit, so batching a sync into one
commit is what keeps it affordable. The xtables lock is held meanwhile, like iptables(8) does,
so an operator's iptables-legacy command cannot interleave with our commit.
"""

from __future__ import annotations

import fcntl
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
            if any(r.target.name == jump.target for r in chain.rules):
                continue
            if jump.prepend:
                chain.insert_rule(to_iptc(jump))
            else:
                chain.append_rule(to_iptc(jump))
        for rule in rules:
            iptc.Chain(tables[rule.table], rule.chain).append_rule(to_iptc(rule))
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
                iptc.Chain(tables[rule.table], rule.chain).delete_rule(to_iptc(rule))
            for rule in added:
                iptc.Chain(tables[rule.table], rule.chain).append_rule(to_iptc(rule))
            _commit(tables, touched)
        except iptc.IPTCError:
            for table in tables.values():
                table.refresh()  # drop the half-made changes
            raise
