"""The filter contract and the per-cycle state filters share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.scheduler.cache import Cache
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo

Reasons = tuple[str, ...]


@dataclass
class CycleState:
    """What one scheduling cycle computed once and every node reads (affinity maps, PVs)."""

    pod: PodInfo
    cache: Cache
    data: dict[str, Any] = field(default_factory=dict)


class Filter:
    """A predicate. `node_local` filters depend only on the pod and the node's own state, so the
    equivalence cache may reuse their verdict until the node's generation changes; the others
    (affinity to other pods, volumes, services) run every cycle. `resolvable` says whether
    evicting pods from the node could make it pass (preemption considers only such nodes)."""

    name = "Filter"
    node_local = True
    resolvable = False

    def __init__(self, args: dict[str, Any] | None = None) -> None:
        self.args = args or {}

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        """False when the filter passes every node for this pod (skipped: no cost)."""
        return True

    def prefilter(self, state: CycleState) -> str | None:
        """Once per cycle: compute shared data; a message fails the pod on every node."""
        return None

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        raise NotImplementedError
