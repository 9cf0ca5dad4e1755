"""Resource scores on CPU and memory, counting the pod's and the node's non-zero requests.

LeastRequested spreads (the emptiest node wins); MostRequested packs (the fullest node that
fits wins: Borg's best fit, which leaves whole machines free for large tasks); they are
alternatives selected by the config's scoringStrategy. BalancedResourceAllocation prefers
nodes whose CPU and memory would be used in equal proportion, so neither is stranded.
"""

from __future__ import annotations

from services.scheduler.filters.base import CycleState
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo
from services.scheduler.scores.base import MAX_NODE_SCORE, Score


def least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def most_requested(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    return min(requested, capacity) * MAX_NODE_SCORE // capacity


class LeastRequested(Score):
    name = "LeastRequested"

    def score(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> int:
        alloc = node.allocatable
        cpu = least_requested(node.non_zero_cpu + pod.non_zero_cpu, alloc.milli_cpu)
        memory = least_requested(node.non_zero_memory + pod.non_zero_memory, alloc.memory)
        return (cpu + memory) // 2


class MostRequested(Score):
    name = "MostRequested"

    def score(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> int:
        alloc = node.allocatable
        cpu = most_requested(node.non_zero_cpu + pod.non_zero_cpu, alloc.milli_cpu)
        memory = most_requested(node.non_zero_memory + pod.non_zero_memory, alloc.memory)
        return (cpu + memory) // 2


class BalancedResourceAllocation(Score):
    name = "BalancedResourceAllocation"

    def score(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> int:
        alloc = node.allocatable
        if not alloc.milli_cpu or not alloc.memory:
            return 0
        cpu = min(1.0, (node.non_zero_cpu + pod.non_zero_cpu) / alloc.milli_cpu)
        memory = min(1.0, (node.non_zero_memory + pod.non_zero_memory) / alloc.memory)
        # The standard deviation of two fractions is half their difference.
        return int((1.0 - abs(cpu - memory) / 2) * MAX_NODE_SCORE)
