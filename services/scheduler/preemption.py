"""Preemption: when no node fits a pod, find the node where evicting the fewest, least
important pods makes it fit.

The model is Borg's prod/non-prod split generalised to PriorityClasses: a pod may evict only
pods of strictly lower priority, never equal or higher (two prod jobs never preempt each
other), and a pod whose PriorityClass says `preemptionPolicy: Never` waits instead.

On each candidate node every lower-priority pod is removed in a simulation; if the pod then
fits, victims are added back and kept whenever the pod still fits, so the eviction set is
minimal. PodDisruptionBudgets are respected as kube-scheduler does, as a preference (the
victims are deleted, not evicted, so a budget cannot refuse): the victims whose removal would
take a budget below zero disruptions are offered back first, so a budget is broken only when
nothing else frees the room. Among the nodes, Kubernetes' order decides: the fewest budget
violations, then the lowest highest victim priority, then the lowest sum of priorities, then
the fewest victims, then the node whose most important victims started last.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from pinnace.api.policy.v1 import policy_pb2
from services.machinery import labels
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
    # Victims whose eviction takes a PodDisruptionBudget below zero allowed disruptions.
    violations: int = 0


Budgets = Iterable[tuple[policy_pb2.PodDisruptionBudget, labels.Selector]]


def split_by_budget(pods: list[PodInfo], budgets: Budgets) -> tuple[list[PodInfo], list[PodInfo]]:
    """(pods whose removal violates a budget, the others), in the given order, counting
    down each budget's disruptionsAllowed as pods are taken (filterPodsWithPDBViolation).
    Pods the eviction subresource already counted (disruptedPods) cost nothing; a budget
    with an empty selector covers nothing here, as in kube-scheduler."""
    tracked = [(b, sel, [b.status.disruptions_allowed]) for b, sel in budgets if not sel.is_empty()]
    violating: list[PodInfo] = []
    others: list[PodInfo] = []
    for pod in pods:
        broken = False
        for budget, selector, left in tracked if pod.labels else ():
            if budget.metadata.namespace != pod.namespace or not selector.matches(pod.labels):
                continue
            if pod.name in budget.status.disrupted_pods:
                continue
            left[0] -= 1
            broken = broken or left[0] < 0
        (violating if broken else others).append(pod)
    return violating, others


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


def select_victims(framework: Framework, pod: PodInfo, node: NodeInfo) -> Candidate | None:
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
    violating, others = split_by_budget(lower, framework.cache.budgets.values())
    victims: list[PodInfo] = []
    violations = 0

    def reprieve(candidate: PodInfo) -> bool:
        view.add_pod(candidate)
        removed.discard(candidate.key)
        if _fits(framework, pod, view, removed, remote):
            return True
        view.remove_pod(candidate.key)
        removed.add(candidate.key)
        victims.append(candidate)
        return False

    for candidate in violating:
        violations += not reprieve(candidate)
    for candidate in others:
        reprieve(candidate)
    return Candidate(node.name, victims, violations)


def _rank(candidate: Candidate) -> tuple[int, int, int, int, float]:
    victims = candidate.victims
    highest = max((v.priority for v in victims), default=-_PRIORITY_OFFSET)
    total = sum(v.priority + _PRIORITY_OFFSET for v in victims)
    earliest_of_highest = min(
        (v.start_time or v.creation for v in victims if v.priority == highest), default=0.0
    )
    # Later start of the most important victims is better: negate to sort ascending.
    return (candidate.violations, highest, total, len(victims), -earliest_of_highest)


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
        candidate = select_victims(framework, pod, node)
        if candidate is not None:
            candidates.append(candidate)
            if any(not c.victims for c in candidates) or len(candidates) >= wanted:
                break
    return pick_candidate(candidates)
