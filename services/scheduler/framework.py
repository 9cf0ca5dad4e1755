"""One scheduling cycle: filter the nodes, score the feasible ones, pick the best.

Relaxed randomisation: the cycle walks the node list round-robin from where the previous cycle
stopped and stops once it has found numFeasibleNodesToFind feasible nodes (Kubernetes'
percentageOfNodesToScore), so a 5,000-node cluster examines ~500 nodes per pod and every node
still gets its turn. The equivalence and score caches (equivalence.py) make each examined node
a dictionary lookup unless the node changed since the pod's class last saw it.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from services.scheduler.cache import Cache
from services.scheduler.config import SchedulerConfig
from services.scheduler.equivalence import Entry, EquivalenceCache
from services.scheduler.filters.base import CycleState, Filter, Reasons
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
DEFAULT_PERCENTAGE_BASE = 50


def num_feasible_nodes_to_find(percentage: int, total: int) -> int:
    """Kubernetes' numFeasibleNodesToFind: every node below 100 nodes; otherwise the configured
    percentage, or adaptively 50 - nodes/125 percent, never under 5% nor under 100 nodes."""
    if total < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return total
    adaptive = percentage
    if adaptive <= 0:
        adaptive = DEFAULT_PERCENTAGE_BASE - total // 125
        adaptive = max(adaptive, MIN_FEASIBLE_NODES_PERCENTAGE)
    count = total * adaptive // 100
    return max(count, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass
class Failure:
    reasons: Reasons
    resolvable: bool


@dataclass
class FitError(Exception):
    """No node fits: `failures` maps node names to why (Kubernetes' Diagnosis)."""

    pod: PodInfo
    num_nodes: int
    failures: dict[str, Failure] = field(default_factory=dict)
    prefilter: str = ""

    def __str__(self) -> str:
        return self.message()

    def message(self) -> str:
        """Kubernetes' summary: '0/5 nodes are available: 3 Insufficient cpu, 2 node(s) ...'."""
        if self.prefilter:
            return f"0/{self.num_nodes} nodes are available: {self.prefilter}."
        if self.num_nodes == 0:
            return "no nodes available to schedule pods"
        counts: Counter[str] = Counter()
        for failure in self.failures.values():
            counts.update(failure.reasons)
        # Most frequent reason first, then alphabetical: "3 Insufficient cpu, 2 node(s) didn't...".
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        parts = [f"{count} {reason}" for reason, count in ranked]
        return f"0/{self.num_nodes} nodes are available: {', '.join(parts)}."


@dataclass
class ScheduleResult:
    node: str
    evaluated: int
    feasible: int


@dataclass
class Stats:
    filter_hits: int = 0
    filter_misses: int = 0
    score_hits: int = 0
    score_misses: int = 0
    nodes_examined: int = 0


class Framework:
    def __init__(self, config: SchedulerConfig, cache: Cache, rng: random.Random | None = None) -> None:
        self.config = config
        self.cache = cache
        self.filters = config.build_filters()
        self.scores = config.build_scores()
        self.ecache = EquivalenceCache()
        self.rng = rng or random.Random()
        self.next_start = 0
        self.stats = Stats()

    # ------------------------------------------------------------------ filters

    def _run(self, filters: list[Filter], pod: PodInfo, node: NodeInfo, state: CycleState) -> Failure | None:
        for flt in filters:
            reasons = flt.filter(pod, node, state)
            if reasons is not None:
                return Failure(reasons, flt.resolvable)
        return None

    def prepare(self, pod: PodInfo) -> tuple[CycleState, list[Filter], list[Filter]]:
        """Applicable filters split into node-local and cluster-wide; raises on a pre-filter failure."""
        cache = self.cache
        state = CycleState(pod, cache)
        active = [f for f in self.filters if f.applies(pod, cache)]
        for flt in active:
            message = flt.prefilter(state)
            if message:
                raise FitError(pod, cache.node_count(), prefilter=message)
        return state, [f for f in active if f.node_local], [f for f in active if not f.node_local]

    def check_node(
        self, pod: PodInfo, node: NodeInfo, state: CycleState, filters: list[Filter] | None = None
    ) -> Failure | None:
        """Every applicable filter on one node view, uncached (nominated nodes, preemption)."""
        if filters is None:
            _, local, remote = self.prepare(pod)
            filters = local + remote
        return self._run(filters, pod, self._with_nominated(pod, node), state)

    def _with_nominated(self, pod: PodInfo, node: NodeInfo) -> NodeInfo:
        """The node as the pod must see it: plus the pods nominated to it that outrank the pod
        (they will take the room their preemption freed)."""
        nominated = self.cache.nominated.get(node.name)
        if not nominated:
            return node
        ahead = [p for p in nominated.values() if p.key != pod.key and p.priority >= pod.priority]
        if not ahead:
            return node
        view = node.clone()
        for other in ahead:
            view.add_pod(other)
        return view

    # ------------------------------------------------------------------ the cycle

    def schedule(self, pod: PodInfo) -> ScheduleResult:
        cache, config, stats = self.cache, self.config, self.stats
        nodes = cache.node_list
        total = len(nodes)
        if total == 0:
            raise FitError(pod, 0)
        state, local, remote = self.prepare(pod)
        all_filters = local + remote

        nominated_name = pod.pod.status.nominated_node_name
        nominated_node = cache.nodes.get(nominated_name) if nominated_name else None
        if (
            nominated_node is not None
            and nominated_node.node is not None
            and self.check_node(pod, nominated_node, state, all_filters) is None
        ):
            return ScheduleResult(nominated_name, 1, 1)

        scores = [s for s in self.scores if s.applies(pod, cache)]
        for score in scores:
            score.prescore(state)
        memo_scores = [s for s in scores if s.node_local and not s.normalizes]
        cycle_scores = [s for s in scores if not (s.node_local and not s.normalizes)]

        use_ecache, use_scache = config.equivalence_classes, config.score_caching
        memo: dict[str, Entry] | None = None
        if use_ecache or use_scache:
            memo = self.ecache.entries(self.ecache.key_of(pod))
        to_find = (
            num_feasible_nodes_to_find(config.percentage_of_nodes_to_score, total)
            if config.relaxed_randomization
            else total
        )
        start = self.next_start % total if config.relaxed_randomization else 0
        nominated = cache.nominated
        epoch = cache.epoch
        feasible: list[NodeInfo] = []
        base: list[int] = []
        failures: dict[str, Failure] = {}
        examined = found = 0
        # Hits and misses counted in locals and added once: this loop runs for hundreds of
        # nodes per pod, and the walk starts at `start` without an index computation per node.
        filter_hits = filter_misses = score_hits = score_misses = 0
        for node in nodes[start:] + nodes[:start] if start else nodes:
            if found >= to_find:
                break
            examined += 1
            name = node.name
            generation = node.generation
            entry: Entry | None = None
            if memo is not None:
                entry = memo.get(name)
                if entry is None:
                    entry = memo[name] = Entry()
            failure: Failure | None
            if nominated and name in nominated:
                failure = self._run(all_filters, pod, self._with_nominated(pod, node), state)
            else:
                if use_ecache and entry is not None:
                    if entry.filter_generation == generation:
                        filter_hits += 1
                        reasons = entry.reasons
                        failure = Failure(reasons, entry.resolvable) if reasons else None
                    else:
                        filter_misses += 1
                        failure = self._run(local, pod, node, state)
                        entry.filter_generation = generation
                        entry.reasons = failure.reasons if failure else None
                        entry.resolvable = failure.resolvable if failure else False
                else:
                    failure = self._run(local, pod, node, state)
                if failure is None and remote:
                    failure = self._run(remote, pod, node, state)
            if failure is not None:
                failures[name] = failure
                continue
            value = 0
            if memo_scores:
                if use_scache and entry is not None:
                    if entry.score_generation == generation and entry.score_epoch == epoch:
                        score_hits += 1
                        value = entry.score
                    else:
                        score_misses += 1
                        value = sum(s.weight * s.score(pod, node, state) for s in memo_scores)
                        entry.score, entry.score_generation, entry.score_epoch = value, generation, epoch
                else:
                    value = sum(s.weight * s.score(pod, node, state) for s in memo_scores)
            feasible.append(node)
            base.append(value)
            found += 1
        stats.filter_hits += filter_hits
        stats.filter_misses += filter_misses
        stats.score_hits += score_hits
        stats.score_misses += score_misses
        stats.nodes_examined += examined
        if config.relaxed_randomization:
            self.next_start = (start + examined) % total
        if not feasible:
            raise FitError(pod, total, failures)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, examined, 1)
        for score in cycle_scores:
            raw = [score.score(pod, node, state) for node in feasible]
            if score.normalizes:
                score.normalize(feasible, raw, state)
            weight = score.weight
            for i, value in enumerate(raw):
                base[i] += weight * value
        return ScheduleResult(self._select(feasible, base).name, examined, len(feasible))

    def _select(self, nodes: list[NodeInfo], totals: list[int]) -> NodeInfo:
        """Highest total; ties broken uniformly at random. Identical nodes tie by the hundred, so
        the best are gathered in one C-level pass and the RNG is drawn once, not once per tie."""
        best = max(totals)
        ties = [i for i, total in enumerate(totals) if total == best]
        return nodes[ties[self.rng.randrange(len(ties))] if len(ties) > 1 else ties[0]]

    def scores_for(self, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """Total scores of the given (feasible) nodes, uncached: for tests and tooling."""
        state, _, _ = self.prepare(pod)
        scores = [s for s in self.scores if s.applies(pod, self.cache)]
        totals = [0] * len(nodes)
        for score in scores:
            score.prescore(state)
            raw = [score.score(pod, node, state) for node in nodes]
            if score.normalizes:
                score.normalize(nodes, raw, state)
            for i, value in enumerate(raw):
                totals[i] += score.weight * value
        return totals
