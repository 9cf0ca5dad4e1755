"""ipMasq: the per-attachment NAT chain with MASQUERADE, built as the reference plugin does.

Chain `CNI-<sha512(network+containerID) hex, 24 chars>` in the nat table of the namespace the
plugin runs in, holding `-d <subnet> -j ACCEPT` and `! -d <multicast> -j MASQUERADE`, entered
from `POSTROUTING -s <container IP>`; every rule carries the comment
`name: "<net>" id: "<cid>"`. python-iptables drives the legacy xtables tables
(iptables-legacy); the reference plugin on Debian 12 goes through iptables-nft instead.

Writers serialise on /run/xtables.lock, the lock iptables-legacy itself takes, because a
libiptc commit replaces the whole table and would otherwise lose a concurrent change.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import iptc

from cni_plugins.result import IPInterface
from cni_plugins.spec import ERR_INTERNAL, ERR_TRY_AGAIN_LATER, CniError

XTABLES_LOCK = "/run/xtables.lock"
LOCK_TIMEOUT = 30.0
_MAX_CHAIN = 28
_COMMENT_RE = re.compile(r'^name: "(.*)" id: "(.*)"$')


def chain_name(network: str, container_id: str) -> str:
    """The reference's chain name (utils.FormatChainName)."""
    digest = hashlib.sha512((network + container_id).encode()).hexdigest()
    return ("CNI-" + digest)[:_MAX_CHAIN]


def comment(network: str, container_id: str) -> str:
    """The reference's rule comment (utils.FormatComment, Go's %q quoting)."""
    return f"name: {json.dumps(network)} id: {json.dumps(container_id)}"


def parse_comment(text: str) -> tuple[str, str] | None:
    """(network, container id) from one of our comments, else None."""
    match = _COMMENT_RE.match(text)
    return (match.group(1), match.group(2)) if match else None


@contextmanager
def _xtables_lock() -> Iterator[None]:
    fd = os.open(XTABLES_LOCK, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CniError(
                        ERR_TRY_AGAIN_LATER, f"{XTABLES_LOCK} is held by another process"
                    ) from None
                time.sleep(0.002)
        yield
    finally:
        os.close(fd)


@contextmanager
def _nat(ipv6: bool) -> Iterator[Any]:
    """The nat table of the current netns, refreshed under the lock and committed once."""
    with _xtables_lock():
        table = (
            iptc.Table6(iptc.Table6.NAT, autocommit=False)
            if ipv6
            else iptc.Table(iptc.Table.NAT, autocommit=False)
        )
        try:
            table.refresh()  # a fresh handle: the cached one may belong to another netns
            yield table
            table.commit()
        except iptc.IPTCError as exc:
            raise CniError(ERR_INTERNAL, f"iptables nat: {exc}") from None
        finally:
            table.close()


def _rule(ipv6: bool) -> Any:
    return iptc.Rule6() if ipv6 else iptc.Rule()


def _comment_of(rule: Any) -> str:
    for match in rule.matches:
        if match.name == "comment":
            value = match.get_all_parameters().get("comment")
            return str(value[0]) if value else ""
    return ""


def _make(ipv6: bool, target: str, text: str, src: str = "", dst: str = "") -> Any:
    rule = _rule(ipv6)
    if src:
        rule.src = src
    if dst:
        rule.dst = dst
    match = rule.create_match("comment")
    match.comment = text
    rule.target = iptc.Target(rule, target)
    return rule


def _has(chain: Any, wanted: Any) -> bool:
    sig = (wanted.src, wanted.dst, wanted.target.name, _comment_of(wanted))
    return any((r.src, r.dst, r.target.name, _comment_of(r)) == sig for r in chain.rules)


def setup(addr: IPInterface, chain: str, text: str) -> None:
    """Masquerade traffic from `addr` leaving its subnet (AppendUnique semantics)."""
    ipv6 = addr.version == 6
    multicast = "ff00::/8" if ipv6 else "224.0.0.0/4"
    host_len = 128 if ipv6 else 32
    with _nat(ipv6) as table:
        if not table.is_chain(chain):
            table.create_chain(chain)
        own = iptc.Chain(table, chain)
        for rule in (
            _make(ipv6, "ACCEPT", text, dst=str(addr.network)),
            _make(ipv6, "MASQUERADE", text, dst="!" + multicast),
        ):
            if not _has(own, rule):
                own.append_rule(rule)
        post = iptc.Chain(table, "POSTROUTING")
        jump = _make(ipv6, chain, text, src=f"{addr.ip}/{host_len}")
        if not _has(post, jump):
            post.append_rule(jump)


def teardown(chain: str, ipv6: bool = False) -> None:
    """Remove the chain and every POSTROUTING jump to it; missing pieces are fine."""
    with _nat(ipv6) as table:
        _remove(table, chain)


def _remove(table: Any, chain: str) -> None:
    post = iptc.Chain(table, "POSTROUTING")
    for rule in list(post.rules):
        if rule.target.name == chain:
            post.delete_rule(rule)
    if table.is_chain(chain):
        own = iptc.Chain(table, chain)
        own.flush()
        table.delete_chain(chain)


def exists(chain: str, ipv6: bool = False) -> bool:
    """Whether the chain is present (CHECK)."""
    with _nat(ipv6) as table:
        return bool(table.is_chain(chain))


def gc(network: str, valid_ids: set[str], ipv6: bool = False) -> list[str]:
    """Remove this network's chains whose container is no longer valid; returns their names."""
    removed: list[str] = []
    with _nat(ipv6) as table:
        for ch in list(table.chains):
            if not ch.name.startswith("CNI-"):
                continue
            owners = {parse_comment(_comment_of(r)) for r in ch.rules}
            owner = next((o for o in owners if o is not None), None)
            if owner is None or owner[0] != network or owner[1] in valid_ids:
                continue
            if ch.name == chain_name(network, owner[1]):
                _remove(table, ch.name)
                removed.append(ch.name)
    return removed
