"""InterPodAffinity (MatchInterPodAffinity): required pod affinity and anti-affinity by
topologyKey, and the symmetric rule that no existing pod's required anti-affinity may match
the incoming pod in the node's domain.

The pre-filter turns the terms into sets of (topologyKey, value) domains once per cycle, using
the cache's label index, so the per-node check is a few set lookups.
"""

from __future__ import annotations

from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState, Filter, Reasons
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import AffinityTerm, PodInfo

Domain = tuple[str, str]
EXISTING_ANTI: Reasons = ("node(s) didn't satisfy existing pods anti-affinity rules",)
AFFINITY: Reasons = ("node(s) didn't match pod affinity rules",)
ANTI_AFFINITY: Reasons = ("node(s) didn't match pod anti-affinity rules",)


def existing_anti_domains(pod: PodInfo, cache: Cache, excluded: set[str]) -> set[Domain]:
    domains: set[Domain] = set()
    for term, holders in cache.anti_terms.items():
        if not term.matches_pod(pod, cache.namespace_labels):
            continue
        key = term.topology_key
        for other in holders.values():
            if other.key == pod.key or other.key in excluded:
                continue
            node = cache.node_of(other.key)
            value = node.labels.get(key) if node is not None else None
            if value is not None:
                domains.add((key, value))
    return domains


def term_domains(
    pod: PodInfo, cache: Cache, terms: tuple[AffinityTerm, ...], excluded: set[str]
) -> list[set[Domain]]:
    result: list[set[Domain]] = []
    for term in terms:
        domains: set[Domain] = set()
        for other in cache.pods_matching_term(term):
            if other.key == pod.key or other.terminating or other.key in excluded:
                continue
            node = cache.node_of(other.key)
            value = node.labels.get(term.topology_key) if node is not None else None
            if value is not None:
                domains.add((term.topology_key, value))
        result.append(domains)
    return result


class InterPodAffinity(Filter):
    name = "InterPodAffinity"
    node_local = False
    resolvable = True

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        if pod.required_affinity or pod.required_anti_affinity:
            return True
        return bool(cache.anti_terms)

    def prefilter(self, state: CycleState) -> str | None:
        pod, cache = state.pod, state.cache
        # Pods a preemption simulation has removed do not count.
        excluded: set[str] = state.data.get("excluded", set())
        state.data["existing_anti"] = existing_anti_domains(pod, cache, excluded)
        affinity = term_domains(pod, cache, pod.required_affinity, excluded)
        state.data["affinity"] = affinity
        state.data["anti"] = set().union(*term_domains(pod, cache, pod.required_anti_affinity, excluded))
        # The first pod of a group that asks to be near its own kind may go anywhere.
        state.data["self_match"] = (
            bool(pod.required_affinity)
            and not any(affinity)
            and all(t.matches_pod(pod, cache.namespace_labels) for t in pod.required_affinity)
        )
        return None

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        # Kubernetes' order: the pod's affinity, its anti-affinity, then existing pods' anti-affinity.
        node_labels = node.labels
        if pod.required_affinity and not state.data["self_match"]:
            for term, domains in zip(pod.required_affinity, state.data["affinity"], strict=True):
                value = node_labels.get(term.topology_key)
                if value is None or (term.topology_key, value) not in domains:
                    return AFFINITY
        anti: set[tuple[str, str]] = state.data["anti"]
        if anti:
            for term in pod.required_anti_affinity:
                value = node_labels.get(term.topology_key)
                if value is not None and (term.topology_key, value) in anti:
                    return ANTI_AFFINITY
        existing: set[tuple[str, str]] = state.data["existing_anti"]
        if existing and any((key, value) in existing for key, value in node_labels.items()):
            return EXISTING_ANTI
        return None
