"""The iptables backend kube-proxy programs, and the restore/save runner.

Debian 12 ships two iptables backends that keep separate rulesets in the kernel: legacy
xtables (iptables-legacy*, and python-iptables, which drives libiptc) and nf_tables
(iptables-nft*, the default `iptables`). Userspace mode's portals are written with
python-iptables, so they can only live in the legacy tables; iptables mode therefore also uses
iptables-legacy-restore/-save, and a node's KUBE-* rules of both modes always live in one
backend (docs/proxy.md explains the cost: every legacy commit rewrites the whole table).

At start-up `detect()` checks that the legacy tables work and that the nf_tables backend holds
no KUBE-* chains (left by another kube-proxy, or by an older run with the other backend): rules
in both would both apply to every packet. kube-proxy refuses to start then, unless told to
clean them (`--cleanup` removes KUBE-* chains from both backends).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

RESTORE_WAIT_SECONDS = "5"


class BackendError(RuntimeError):
    """The backend is unusable, or the node's rules are in a state we must not touch."""


@dataclass(frozen=True)
class Backend:
    name: str
    save_cmd: str
    restore_cmd: str
    iptables_cmd: str

    def available(self) -> bool:
        return all(shutil.which(c) for c in (self.save_cmd, self.restore_cmd, self.iptables_cmd))

    def save(self, table: str) -> str:
        """The table as iptables-save prints it (an absent table prints nothing)."""
        done = subprocess.run([self.save_cmd, "-t", table], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackendError(f"{self.save_cmd} -t {table}: {done.stderr.strip()}")
        return done.stdout

    def restore(self, data: str, *, noflush: bool = True) -> None:
        args = [self.restore_cmd, "-w", RESTORE_WAIT_SECONDS]
        if noflush:
            args.append("--noflush")
        done = subprocess.run(args, input=data, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackendError(
                f"{self.restore_cmd} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
            )


LEGACY = Backend("legacy", "iptables-legacy-save", "iptables-legacy-restore", "iptables-legacy")
NFT = Backend("nf_tables", "iptables-nft-save", "iptables-nft-restore", "iptables-nft")
# The backend python-iptables drives; both modes use it.
CHOSEN = LEGACY
OTHER = NFT


def kube_chains(save_output: str) -> set[str]:
    return {line[1:].split(" ", 1)[0] for line in save_output.splitlines() if line.startswith(":KUBE-")}


def foreign_kube_chains() -> dict[str, set[str]]:
    """KUBE-* chains in the backend we do not use (table -> chains); empty when it is absent."""
    if not OTHER.available():
        return {}
    found: dict[str, set[str]] = {}
    for table in ("filter", "nat", "mangle"):
        try:
            chains = kube_chains(OTHER.save(table))
        except BackendError:
            continue
        if chains:
            found[table] = chains
    return found


def detect() -> Backend:
    """Must run in the node's namespace: the chosen backend, if it works and is alone."""
    if not CHOSEN.available():
        raise BackendError("iptables-legacy, iptables-legacy-save and iptables-legacy-restore are required")
    CHOSEN.save("nat")
    foreign = foreign_kube_chains()
    if foreign:
        listing = ", ".join(f"{t}: {' '.join(sorted(c))}" for t, c in sorted(foreign.items()))
        raise BackendError(
            f"the {OTHER.name} backend already holds kube-proxy chains ({listing}); "
            "run `pinnace-proxy --cleanup` first: rules in two backends would both apply"
        )
    return CHOSEN
