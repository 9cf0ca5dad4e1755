"""Preemption: when no node fits a pod, find the node where evicting the fewest, least
important pods makes it fit.

The model is Borg's prod/non-prod split generalised to PriorityClasses: a pod may evict only
pods of strictly lower priority, never equal or higher (two prod jobs never preempt each
other), and a pod whose PriorityClass says `preemptionPolicy: Never` waits instead.

On each candidate node every lower-priority pod is removed in a simulation; if the pod then
fits, victims are added back most important first and kept whenever the pod still fits, so
the eviction set is minimal. Among the nodes, Kubernetes' order decides: the lowest highest
victim priority, then the lowest sum of priorities, then the fewest victims, then the node
whose most important victims started last.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState, Filter
from services.scheduler.framework import FitError, Framework
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo

MIN_CANDIDATE_NODES_PERCENTAGE = 10
MIN_CANDIDATE_NODES_ABSOLUTE = 100
# Kubernetes adds MaxInt32+1 to each priority before summing, so negative priorities count.
_PRIORITY_OFFSET = 2**31


@dataclass
class Candidate:
    node: str
    victims: list[PodInfo]


def eligible(pod: PodInfo, cache: Cache) -> bool:
    """May this pod preempt? Not with preemptionPolicy Never, and not again while the victims
    of its previous preemption are still terminating on its nominated node."""
    if pod.preempt_never:
        return False
    nominated = pod.pod.status.nominated_node_name
    node = cache.nodes.get(nominated) if nominated else None
    if node is not None:
        return not any(p.terminating and p.priority < pod.priority for p in node.pods.values())
    return True


def _fits(framework: Framework, pod: PodInfo, view: NodeInfo, removed: set[str], remote: bool) -> bool:
    cache = framework.cache
    state = CycleState(pod, cache, {"excluded": removed})
    filters: list[Filter] = [f for f in framework.filters if f.applies(pod, cache)]
    if remote:
        for flt in filters:
            if flt.prefilter(state):
                return False
    return framework.check_node(pod, view, state, filters) is None


def select_victims(framework: Framework, pod: PodInfo, node: NodeInfo) -> list[PodInfo] | None:
    lower = [p for p in node.pods.values() if p.priority < pod.priority]
    if not lower:
        return None
    remote = any(not f.node_local and f.applies(pod, framework.cache) for f in framework.filters)
    view = node.clone()
    removed: set[str] = set()
    for victim in lower:
        view.remove_pod(victim.key)
        removed.add(victim.key)
    if not _fits(framework, pod, view, removed, remote):
        return None
    lower.sort(key=lambda p: (-p.priority, p.start_time or p.creation))
    victims: list[PodInfo] = []
    for candidate in lower:
        view.add_pod(candidate)
        removed.discard(candidate.key)
        if not _fits(framework, pod, view, removed, remote):
            view.remove_pod(candidate.key)
            removed.add(candidate.key)
            victims.append(candidate)
    return victims


def _rank(candidate: Candidate) -> tuple[int, int, int, float]:
    victims = candidate.victims
    highest = max((v.priority for v in victims), default=-_PRIORITY_OFFSET)
    total = sum(v.priority + _PRIORITY_OFFSET for v in victims)
    earliest_of_highest = min(
        (v.start_time or v.creation for v in victims if v.priority == highest), default=0.0
    )
    # Later start of the most important victims is better: negate to sort ascending.
    return (highest, total, len(victims), -earliest_of_highest)


def pick_candidate(candidates: Iterable[Candidate]) -> Candidate | None:
    return min(candidates, key=_rank, default=None)


def find_candidate(
    framework: Framework, pod: PodInfo, error: FitError, rng: random.Random | None = None
) -> Candidate | None:
    """The node and victims for a pod that failed with `error`, or None (nothing helps)."""
    cache = framework.cache
    if error.prefilter or not eligible(pod, cache):
        return None
    names = [name for name, failure in error.failures.items() if failure.resolvable]
    if not names:
        return None
    wanted = max(len(names) * MIN_CANDIDATE_NODES_PERCENTAGE // 100, MIN_CANDIDATE_NODES_ABSOLUTE)
    offset = (rng or random).randrange(len(names))
    candidates: list[Candidate] = []
    for i in range(len(names)):
        node = cache.nodes.get(names[(offset + i) % len(names)])
        if node is None or node.node is None:
            continue
        victims = select_victims(framework, pod, node)
        if victims is not None:
            candidates.append(Candidate(node.name, victims))
            if any(not c.victims for c in candidates) or len(candidates) >= wanted:
                break
    return pick_candidate(candidates)
