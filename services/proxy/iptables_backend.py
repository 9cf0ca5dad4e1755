"""The iptables backend kube-proxy programs, and the restore/save runner.

Debian 12 ships two iptables backends that keep separate rulesets in the kernel: legacy
xtables (iptables-legacy*, and python-iptables, which drives libiptc) and nf_tables
(iptables-nft*, the default `iptables`). They cost differently (docs/performance.md):

- legacy replaces a whole table on every commit, so even a one-rule change costs time
  proportional to the ruleset (0.56 s at 10,000 services);
- nf_tables applies changes incrementally (a one-chain change costs ~20-40 ms at 10,000
  services), but iptables-nft-restore --noflush is quadratic in the number of chains it is
  given unless the batch starts with a command naming no chain (see `Backend.restore`).

Userspace mode's portals are written with python-iptables, so that mode always uses legacy.
iptables mode uses the backend `--iptables-backend` names (nf_tables by default). A mode's rules
never live in both: at start-up `detect()` refuses when the other backend holds chains of the
same mode (left by another kube-proxy, or by a run with the other backend), since rules in both
would both apply to every packet; `--cleanup` removes KUBE-* chains from both backends. The
other mode's chains are removed from both backends when a mode starts (cleanup.py).
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
    # iptables-nft-restore --noflush asks the kernel only for the chains the batch names,
    # collecting those names in a sorted linked list (one strcmp walk per chain reference):
    # O(n^2) for a full ruleset (180 s at 10,000 services). A command naming no chain first
    # (`-S`, a listing whose output is discarded) makes it fetch every chain instead: linear.
    list_before_full_restore: bool = False

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
        # stdout carries only what a `-S` in the input lists: discarded.
        done = subprocess.run(
            args, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
        )
        if done.returncode != 0:
            raise BackendError(
                f"{self.restore_cmd} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
            )


LEGACY = Backend("legacy", "iptables-legacy-save", "iptables-legacy-restore", "iptables-legacy")
NFT = Backend(
    "nf_tables", "iptables-nft-save", "iptables-nft-restore", "iptables-nft", list_before_full_restore=True
)
# --iptables-backend values.
BACKENDS = {"nft": NFT, "legacy": LEGACY}
ALL = (LEGACY, NFT)
USERSPACE_CHAINS = frozenset(
    {
        "KUBE-PORTALS-CONTAINER",
        "KUBE-PORTALS-HOST",
        "KUBE-NODEPORT-CONTAINER",
        "KUBE-NODEPORT-HOST",
        "KUBE-NODEPORT-NON-LOCAL",
    }
)


def is_userspace_chain(chain: str) -> bool:
    return chain in USERSPACE_CHAINS


def is_iptables_chain(chain: str) -> bool:
    return chain.startswith("KUBE-") and chain not in USERSPACE_CHAINS


def kube_chains(save_output: str) -> set[str]:
    return {line[1:].split(" ", 1)[0] for line in save_output.splitlines() if line.startswith(":KUBE-")}


def chains_of_mode(backend: Backend, mode: str) -> dict[str, set[str]]:
    """The chains of `mode` in `backend` (table -> chains); empty when the backend is absent."""
    if not backend.available():
        return {}
    owned = is_userspace_chain if mode == "userspace" else is_iptables_chain
    found: dict[str, set[str]] = {}
    for table in ("filter", "nat", "mangle"):
        try:
            chains = {c for c in kube_chains(backend.save(table)) if owned(c)}
        except BackendError:
            continue
        if chains:
            found[table] = chains
    return found


def backend_for(mode: str, preferred: str) -> Backend:
    """python-iptables can only drive legacy: userspace mode has no choice."""
    return LEGACY if mode == "userspace" else BACKENDS[preferred]


def detect(mode: str = "iptables", preferred: str = "nft") -> Backend:
    """Must run in the node's namespace: the backend of `mode`, if it works and no other
    backend holds this mode's chains."""
    chosen = backend_for(mode, preferred)
    if not chosen.available():
        raise BackendError(
            f"{chosen.iptables_cmd}, {chosen.save_cmd} and {chosen.restore_cmd} are required "
            f"for {mode} mode on the {chosen.name} backend"
        )
    chosen.save("nat")
    for other in ALL:
        if other is chosen:
            continue
        foreign = chains_of_mode(other, mode)
        if foreign:
            listing = ", ".join(f"{t}: {' '.join(sorted(c))}" for t, c in sorted(foreign.items()))
            raise BackendError(
                f"the {other.name} backend already holds kube-proxy chains ({listing}); "
                "run `pinnace-proxy --cleanup` first: rules in two backends would both apply"
            )
    return chosen
