"""The score contract."""

from __future__ import annotations

from typing import Any

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo

MAX_NODE_SCORE = 100


class Score:
    """A priority function. `node_local` scores depend only on the pod, the node and the
    cache's epoch (node count, image spread), so the score cache may reuse them while the
    node's generation is unchanged; `normalizes` scores are rescaled over the cycle's feasible
    nodes after the raw values are known."""

    name = "Score"
    node_local = True
    normalizes = False
    default_weight = 1

    def __init__(self, weight: int, args: dict[str, Any] | None = None) -> None:
        self.weight = weight
        self.args = args or {}

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        """False when every node would get the same score (then it cannot change the choice)."""
        return True

    def prescore(self, state: CycleState) -> None:
        """Once per cycle, before any node is scored."""

    def score(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> int:
        raise NotImplementedError

    def normalize(self, nodes: list[NodeInfo], scores: list[int], state: CycleState) -> None:
        """Rescale raw scores in place (only called when `normalizes`)."""


def normalize_max(scores: list[int], reverse: bool = False) -> None:
    """Kubernetes' DefaultNormalizeScore: scale so the highest raw score is MAX_NODE_SCORE
    (reversed: the highest raw score becomes 0)."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, raw in enumerate(scores):
        scaled = raw * MAX_NODE_SCORE // top
        scores[i] = MAX_NODE_SCORE - scaled if reverse else scaled
