"""Preemption: the fewest, least important victims; never equal or higher priority."""

from __future__ import annotations

from typing import Any

import pytest

from pinnace.api.policy.v1 import policy_pb2
from services.machinery import disruption
from services.scheduler import preemption
from services.scheduler.framework import FitError
from tests.unit.scheduler.helpers import cluster, framework, info, make_node, make_pod


def failing(fw, pod):
    with pytest.raises(FitError) as error:
        fw.schedule(pod)
    return error.value


def test_evicts_only_what_is_needed_lowest_priority_first() -> None:
    cache = cluster(
        [make_node("n", cpu="4")],
        [
            make_pod("low-a", cpu="1", priority=1, node="n"),
            make_pod("low-b", cpu="1", priority=2, node="n"),
            make_pod("mid", cpu="1", priority=50, node="n"),
            make_pod("peer", cpu="1", priority=100, node="n"),
        ],
    )
    fw = framework(cache)
    pod = info(make_pod("vip", cpu="2", priority=100))
    candidate = preemption.find_candidate(fw, pod, failing(fw, pod))
    assert candidate is not None
    assert candidate.node == "n"
    assert sorted(v.name for v in candidate.victims) == ["low-a", "low-b"]


def test_never_preempts_equal_or_higher_priority() -> None:
    cache = cluster(
        [make_node("n", cpu="2")],
        [
            make_pod("peer", cpu="1", priority=100, node="n"),
            make_pod("boss", cpu="1", priority=200, node="n"),
        ],
    )
    fw = framework(cache)
    pod = info(make_pod("vip", cpu="1", priority=100))
    assert preemption.find_candidate(fw, pod, failing(fw, pod)) is None


def test_preemption_policy_never_and_unresolvable_failures() -> None:
    cache = cluster([make_node("n", cpu="1")], [make_pod("low", cpu="1", priority=0, node="n")])
    fw = framework(cache)
    never = make_pod("polite", cpu="1", priority=100)
    never.spec.preemption_policy = "Never"
    assert preemption.find_candidate(fw, info(never), failing(fw, info(never))) is None
    # Evicting pods cannot fix a node selector.
    picky = info(make_pod("picky", cpu="1", priority=100, node_selector={"disk": "ssd"}))
    assert preemption.find_candidate(fw, picky, failing(fw, picky)) is None


def test_picks_the_node_with_the_least_important_victims() -> None:
    cache = cluster(
        [make_node("a", cpu="1"), make_node("b", cpu="1"), make_node("c", cpu="2")],
        [
            make_pod("a-pod", cpu="1", priority=10, node="a"),
            make_pod("b-pod", cpu="1", priority=5, node="b"),
            make_pod("c-pod1", cpu="1", priority=1, node="c"),
            make_pod("c-pod2", cpu="1", priority=1, node="c"),
        ],
    )
    fw = framework(cache)
    pod = info(make_pod("vip", cpu="1", priority=100))
    candidate = preemption.find_candidate(fw, pod, failing(fw, pod))
    # c has the lowest highest-victim priority (1) and needs only one victim.
    assert candidate is not None and candidate.node == "c"
    assert len(candidate.victims) == 1


def test_fewest_victims_break_equal_priorities() -> None:
    cache = cluster(
        [make_node("a", cpu="2"), make_node("b", cpu="2")],
        [
            make_pod("a1", cpu="1", priority=1, node="a"),
            make_pod("a2", cpu="1", priority=1, node="a"),
            make_pod("b1", cpu="2", priority=1, node="b"),
        ],
    )
    fw = framework(cache)
    pod = info(make_pod("vip", cpu="2", priority=10))
    candidate = preemption.find_candidate(fw, pod, failing(fw, pod))
    assert candidate is not None and candidate.node == "b"


def test_anti_affinity_victims() -> None:
    from tests.unit.scheduler.test_filters import anti

    cache = cluster(
        [make_node("n")],
        [make_pod("old", labels={"app": "web"}, priority=1, node="n")],
    )
    fw = framework(cache)
    pod = info(make_pod("new", labels={"app": "web"}, priority=10, affinity=anti({"app": "web"})))
    candidate = preemption.find_candidate(fw, pod, failing(fw, pod))
    assert candidate is not None and [v.name for v in candidate.victims] == ["old"]


def test_no_second_preemption_while_victims_terminate() -> None:
    victim = make_pod("low", cpu="1", priority=0, node="n")
    victim.metadata.deletion_timestamp.FromSeconds(5)
    cache = cluster([make_node("n", cpu="1")], [victim])
    pod = make_pod("vip", cpu="1", priority=10)
    pod.status.nominated_node_name = "n"
    assert not preemption.eligible(info(pod), cache)


def budget(app: str, allowed: int, *, namespace: str = "default", disrupted: tuple[str, ...] = ()) -> Any:
    pdb = policy_pb2.PodDisruptionBudget()
    pdb.metadata.name, pdb.metadata.namespace = app, namespace
    pdb.spec.selector.match_labels["app"] = app
    pdb.status.disruptions_allowed = allowed
    for name in disrupted:
        pdb.status.disrupted_pods[name].FromSeconds(1)
    return pdb


def with_budgets(cache: Any, *budgets: policy_pb2.PodDisruptionBudget) -> Any:
    for pdb in budgets:
        cache.budgets[f"{pdb.metadata.namespace}/{pdb.metadata.name}"] = (pdb, disruption.selector(pdb))
    return cache


def test_split_by_budget_counts_allowed_disruptions_down_in_order() -> None:
    pods = [
        info(make_pod(name, labels=labels, namespace=ns))
        for name, labels, ns in (
            ("a", {"app": "db"}, "default"),
            ("b", {"app": "db"}, "default"),
            ("c", {"app": "db"}, "default"),
            ("evicted", {"app": "db"}, "default"),
            ("elsewhere", {"app": "db"}, "other"),
            ("bare", {}, "default"),
        )
    ]
    empty = policy_pb2.PodDisruptionBudget()
    empty.metadata.name, empty.metadata.namespace = "all", "default"
    empty.spec.selector.SetInParent()  # an empty selector covers nothing in the scheduler
    budgets = [budget("db", 1, disrupted=("evicted",)), empty]
    violating, others = preemption.split_by_budget(pods, [(b, disruption.selector(b)) for b in budgets])
    assert [p.name for p in others] == ["a", "evicted", "elsewhere", "bare"]
    assert [p.name for p in violating] == ["b", "c"]


def test_victims_protected_by_a_budget_are_reprieved_first() -> None:
    cache = cluster(
        [make_node("n", cpu="2")],
        [
            make_pod("guarded", cpu="1", priority=1, node="n", labels={"app": "db"}),
            make_pod("spare", cpu="1", priority=2, node="n", labels={"app": "batch"}),
        ],
    )
    fw = framework(cache)
    pod = info(make_pod("vip", cpu="1", priority=100))
    plain = preemption.find_candidate(fw, pod, failing(fw, pod))
    assert plain is not None and [v.name for v in plain.victims] == ["guarded"]  # least important
    with_budgets(cache, budget("db", 0))
    candidate = preemption.find_candidate(fw, pod, failing(fw, pod))
    assert candidate is not None
    assert [v.name for v in candidate.victims] == ["spare"]
    assert candidate.violations == 0


def test_budget_violations_decide_the_node_before_priorities() -> None:
    cache = cluster(
        [make_node("a", cpu="1"), make_node("b", cpu="1")],
        [
            make_pod("a-pod", cpu="1", priority=1, node="a", labels={"app": "db"}),
            make_pod("b-pod", cpu="1", priority=5, node="b", labels={"app": "web"}),
        ],
    )
    with_budgets(cache, budget("db", 0), budget("web", 1))
    fw = framework(cache)
    pod = info(make_pod("vip", cpu="1", priority=100))
    candidate = preemption.find_candidate(fw, pod, failing(fw, pod))
    assert candidate is not None and candidate.node == "b"
    assert [v.name for v in candidate.victims] == ["b-pod"]


def test_a_budget_is_broken_when_nothing_else_frees_the_room() -> None:
    cache = cluster(
        [make_node("n", cpu="1")],
        [make_pod("only", cpu="1", priority=1, node="n", labels={"app": "db"})],
    )
    with_budgets(cache, budget("db", 0))
    fw = framework(cache)
    pod = info(make_pod("vip", cpu="1", priority=100))
    candidate = preemption.find_candidate(fw, pod, failing(fw, pod))
    assert candidate is not None and [v.name for v in candidate.victims] == ["only"]
    assert candidate.violations == 1
