"""Scores against Kubernetes' documented formulas, and the framework's choice."""

from __future__ import annotations

from collections import Counter

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.machinery import labels as selectors
from services.scheduler.config import SchedulerConfig, parse_config
from services.scheduler.filters.base import CycleState
from services.scheduler.scores.images import ImageLocality
from services.scheduler.scores.interpod import InterPodAffinityPreferred
from services.scheduler.scores.node_affinity import NodeAffinityPreferred
from services.scheduler.scores.resources import BalancedResourceAllocation, LeastRequested, MostRequested
from services.scheduler.scores.spread import SelectorSpread
from services.scheduler.scores.taints import TaintTolerationPreferred
from tests.unit.scheduler.helpers import cluster, framework, info, make_node, make_pod

MB = 1024 * 1024


def raw(score, pod, cache, names):
    pi = info(pod)
    state = CycleState(pi, cache)
    score.prescore(state)
    nodes = [cache.nodes[n] for n in names]
    values = [score.score(pi, node, state) for node in nodes]
    if score.normalizes:
        score.normalize(nodes, values, state)
    return values


def test_least_and_most_requested_match_the_kubernetes_example() -> None:
    # Kubernetes' documented example: node 4000m / 10000 MB with 3000m / 5000 MB requested,
    # pod 3000m / 5000 MB... here a node half used and an empty one of the same size.
    cache = cluster(
        [make_node("used", cpu="4", memory="10000Mi"), make_node("empty", cpu="4", memory="10000Mi")],
        [make_pod("a", cpu="2", memory="5000Mi", node="used")],
    )
    pod = make_pod(cpu="1", memory="2500Mi")
    # used: cpu (4000-3000)/4000 -> 25, memory (10000-7500)/10000 -> 25; empty: 75, 75.
    assert raw(LeastRequested(1), pod, cache, ["used", "empty"]) == [25, 75]
    assert raw(MostRequested(1), pod, cache, ["used", "empty"]) == [75, 25]


def test_best_effort_pods_count_default_requests_when_scoring() -> None:
    cache = cluster([make_node("n", cpu="1", memory="1000Mi")])
    # 100m of 1000m -> 90; 200Mi of 1000Mi -> 80; mean 85.
    assert raw(LeastRequested(1), make_pod(), cache, ["n"]) == [85]


def test_balanced_allocation_prefers_equal_fractions() -> None:
    cache = cluster([make_node("n", cpu="4", memory="4Gi")])
    assert raw(BalancedResourceAllocation(1), make_pod(cpu="2", memory="2Gi"), cache, ["n"]) == [100]
    # cpu 1/4, memory 3/4: std 0.25 -> 75.
    assert raw(BalancedResourceAllocation(1), make_pod(cpu="1", memory="3Gi"), cache, ["n"]) == [75]


def test_image_locality_scales_between_thresholds_and_by_spread() -> None:
    cache = cluster(
        [
            make_node("has", images={"web:1": 500 * MB}),
            make_node("also", images={"web:1": 500 * MB}),
            make_node("none"),
            make_node("small", images={"tiny:1": 10 * MB}),
        ]
    )
    pod = make_pod(image="web:1")
    # 500 MB x 2/4 of the nodes = 250 MB -> 100 * (250-23)/(1000-23) = 23.
    assert raw(ImageLocality(1), pod, cache, ["has", "none"]) == [23, 0]
    assert raw(ImageLocality(1), make_pod(image="tiny:1"), cache, ["small"]) == [0]
    # An untagged image means :latest.
    cache2 = cluster([make_node("n", images={"docker.io/web:latest": 1000 * MB})])
    assert raw(ImageLocality(1), make_pod(image="docker.io/web"), cache2, ["n"]) == [100]


def test_preferred_node_affinity_is_scaled_to_the_best_node() -> None:
    cache = cluster(
        [
            make_node("ssd-a", labels={"disk": "ssd", "zone": "a"}),
            make_node("ssd", labels={"disk": "ssd"}),
            make_node("x"),
        ]
    )
    affinity = core_pb2.Affinity()
    for weight, key, value in ((80, "disk", "ssd"), (20, "zone", "a")):
        term = affinity.node_affinity.preferred_during_scheduling_ignored_during_execution.add(weight=weight)
        term.preference.match_expressions.add(key=key, operator="In", values=[value])
    assert raw(NodeAffinityPreferred(2), make_pod(affinity=affinity), cache, ["ssd-a", "ssd", "x"]) == [
        100,
        80,
        0,
    ]


def test_prefer_no_schedule_taints_lower_the_score() -> None:
    cache = cluster(
        [
            make_node("clean"),
            make_node("one", taints=[("a", "", "PreferNoSchedule")]),
            make_node("two", taints=[("a", "", "PreferNoSchedule"), ("b", "", "PreferNoSchedule")]),
        ]
    )
    assert raw(TaintTolerationPreferred(3), make_pod(), cache, ["clean", "one", "two"]) == [100, 50, 0]
    tolerant = make_pod(tolerations=[core_pb2.Toleration(key="a", operator="Exists")])
    assert raw(TaintTolerationPreferred(3), tolerant, cache, ["clean", "one", "two"]) == [100, 100, 0]


def test_selector_spread_counts_nodes_and_zones() -> None:
    nodes = [
        make_node("a1", labels={"topology.kubernetes.io/zone": "a"}),
        make_node("a2", labels={"topology.kubernetes.io/zone": "a"}),
        make_node("b1", labels={"topology.kubernetes.io/zone": "b"}),
    ]
    cache = cluster(nodes, [make_pod("w0", labels={"app": "web"}, node="a1")])
    cache.services["Service/default/web"] = ("default", selectors.from_set({"app": "web"}))
    pod = make_pod(labels={"app": "web"})
    # a1: node 0, zone 0 -> 0; a2: node 100, zone 0 -> 33; b1: node 100, zone 100 -> 100.
    assert raw(SelectorSpread(1), pod, cache, ["a1", "a2", "b1"]) == [0, 33, 100]


def test_preferred_pod_affinity_and_anti_affinity() -> None:
    nodes = [make_node("a", labels={"zone": "a"}), make_node("b", labels={"zone": "b"})]
    cache = cluster(nodes, [make_pod("cache", labels={"app": "cache"}, node="a")])
    affinity = core_pb2.Affinity()
    term = affinity.pod_affinity.preferred_during_scheduling_ignored_during_execution.add(weight=50)
    term.pod_affinity_term.topology_key = "zone"
    term.pod_affinity_term.label_selector.CopyFrom(meta_pb2.LabelSelector(match_labels={"app": "cache"}))
    assert raw(InterPodAffinityPreferred(2), make_pod(affinity=affinity), cache, ["a", "b"]) == [100, 0]
    away = core_pb2.Affinity()
    away.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution.append(term)
    assert raw(InterPodAffinityPreferred(2), make_pod(affinity=away), cache, ["a", "b"]) == [0, 100]


def test_framework_picks_the_best_and_breaks_ties_at_random() -> None:
    cache = cluster([make_node(f"n{i}") for i in range(4)], [make_pod("busy", cpu="2", node="n0")])
    fw = framework(cache)
    chosen = Counter(fw.schedule(info(make_pod(f"p{i}", cpu="100m"))).node for i in range(400))
    assert "n0" not in chosen
    assert set(chosen) == {"n1", "n2", "n3"}
    assert min(chosen.values()) > 80


def test_most_requested_packs() -> None:
    cache = cluster([make_node(f"n{i}") for i in range(3)], [make_pod("busy", cpu="2", node="n1")])
    fw = framework(cache, parse_config({"scoringStrategy": "MostRequested"}))
    assert fw.schedule(info(make_pod(cpu="1"))).node == "n1"


def test_weights_come_from_the_config() -> None:
    config = parse_config({"scores": {"ImageLocality": {"weight": 0}, "LeastRequested": {"weight": 5}}})
    names = {s.name: s.weight for s in config.build_scores()}
    assert "ImageLocality" not in names
    assert names["LeastRequested"] == 5
    assert "MostRequested" not in names
    assert SchedulerConfig().build_scores()
