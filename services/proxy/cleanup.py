"""Removing what kube-proxy created: every KUBE-* chain of one mode (when switching modes) or
of both (`pinnace-proxy --cleanup`), and the rules in other chains that jump to them.

Works from an iptables-save of each table and one iptables-restore --noflush per table, so it
removes exactly what exists: rules written by either mode, by an older run, or by Kubernetes'
own kube-proxy (same chain names), and leaves every other chain and rule alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from services.proxy.iptables_backend import (
    ALL,
    USERSPACE_CHAINS,
    Backend,
    BackendError,
    is_iptables_chain,
    is_userspace_chain,
    kube_chains,
)
from services.proxy.netns import NodeNamespace

__all__ = [
    "USERSPACE_CHAINS",
    "cleanup",
    "cleanup_everything",
    "cleanup_other_mode",
    "cleanup_script",
    "is_any_chain",
    "is_iptables_chain",
    "is_userspace_chain",
]
TABLES = ("filter", "nat", "mangle")
_JUMP = re.compile(r" -[jg] (KUBE-[A-Za-z0-9_-]+)(?: |$)")

ChainFilter = Callable[[str], bool]


def is_any_chain(chain: str) -> bool:
    return chain.startswith("KUBE-")


def cleanup_script(table: str, save_output: str, owned: ChainFilter) -> str:
    """The restore input that removes the owned chains of one table (empty: nothing to do)."""
    chains = {c for c in kube_chains(save_output) if owned(c)}
    if not chains:
        return ""
    deletes = []
    for line in save_output.splitlines():
        if not line.startswith("-A "):
            continue
        source = line.split(" ", 2)[1]
        found = _JUMP.search(line)
        if found and found.group(1) in chains and source not in chains:
            deletes.append("-D" + line[2:])
    ordered = sorted(chains)
    return "\n".join(
        [
            f"*{table}",
            *(f":{c} - [0:0]" for c in ordered),
            *deletes,
            *(f"-X {c}" for c in ordered),
            "COMMIT",
            "",
        ]
    )


def cleanup(backend: Backend, owned: ChainFilter = is_any_chain) -> int:
    """Remove the owned chains from every table of `backend`; returns how many were removed.
    Must run in the node's namespace."""
    removed = 0
    for table in TABLES:
        try:
            saved = backend.save(table)
        except BackendError:
            continue  # a table the kernel does not have holds nothing of ours
        script = cleanup_script(table, saved, owned)
        if script:
            backend.restore(script)
            removed += script.count("\n-X ")
    return removed


def cleanup_other_mode(mode: str) -> int:
    """What a mode does at start: remove the other mode's chains, from every backend they can
    be in (iptables mode may have run on either). Must run in the node's namespace."""
    owned = is_iptables_chain if mode == "userspace" else is_userspace_chain
    return sum(cleanup(backend, owned) for backend in ALL if backend.available())


def cleanup_everything(netns_path: str = "") -> int:
    """`pinnace-proxy --cleanup`: both modes' chains, from both backends, in the node's
    namespace (a node moved from one backend to the other is cleaned in one go)."""
    node = NodeNamespace(netns_path, workers=1)
    try:
        return sum(node.call(cleanup, backend) for backend in ALL if backend.available())
    finally:
        node.close()
