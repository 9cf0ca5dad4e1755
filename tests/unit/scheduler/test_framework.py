"""The cycle: relaxed randomisation, equivalence classes and score caching change the cost,
never the answer's validity."""

from __future__ import annotations

import pytest

from services.scheduler.config import parse_config
from services.scheduler.framework import FitError, num_feasible_nodes_to_find
from tests.unit.scheduler.helpers import cluster, framework, info, make_node, make_pod


@pytest.mark.parametrize(
    ("nodes", "percentage", "expected"),
    [
        (50, 0, 50),
        (100, 0, 100),
        (500, 0, 230),
        (1000, 0, 420),
        (5000, 0, 500),
        (6000, 0, 300),
        (5000, 30, 1500),
        (200, 10, 100),
        (300, 100, 300),
    ],
)
def test_num_feasible_nodes_to_find(nodes: int, percentage: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


def test_relaxed_randomisation_resumes_where_the_last_cycle_stopped() -> None:
    cache = cluster([make_node(f"n{i:03}") for i in range(300)])
    fw = framework(cache)
    # 300 nodes: 50 - 300/125 = 48% -> 144 nodes per cycle.
    fw.schedule(info(make_pod("a")))
    assert fw.next_start == 144
    fw.schedule(info(make_pod("b")))
    assert fw.next_start == 288
    fw.schedule(info(make_pod("c")))
    assert fw.next_start == 132
    assert fw.stats.nodes_examined == 3 * 144


def test_infeasible_nodes_do_not_count_toward_the_stop() -> None:
    nodes = [make_node(f"n{i:03}", cpu="1" if i % 2 else "8") for i in range(300)]
    fw = framework(cluster(nodes))
    fw.schedule(info(make_pod(cpu="2")))
    # 144 feasible nodes wanted, every other node too small: 287 examined.
    assert fw.stats.nodes_examined == 287


def test_equivalence_cache_reuses_verdicts_until_the_node_changes() -> None:
    cache = cluster([make_node(f"n{i}", cpu="1") for i in range(10)])
    fw = framework(cache)
    for i in range(10):
        pod = info(make_pod(f"p{i}", cpu="600m", labels={"app": "web"}))
        cache.assume(pod, fw.schedule(pod).node)
    # First pod: 10 misses; every later one re-checks only the node its predecessor took.
    assert fw.stats.filter_misses == 10 + 9
    assert sorted(len(n.pods) for n in cache.node_list) == [1] * 10
    with pytest.raises(FitError) as error:
        fw.schedule(info(make_pod("extra", cpu="600m", labels={"app": "web"})))
    assert error.value.message() == "0/10 nodes are available: 10 Insufficient cpu."


@pytest.mark.parametrize(
    "flags",
    [
        (True, True, True),
        (False, True, True),
        (True, False, True),
        (True, True, False),
        (False, False, False),
    ],
)
def test_every_technique_gives_a_valid_placement(flags) -> None:
    ecache, scache, relaxed = flags
    config = parse_config(
        {
            "optimizations": {
                "equivalenceClasses": ecache,
                "scoreCaching": scache,
                "relaxedRandomization": relaxed,
            }
        }
    )
    cache = cluster([make_node(f"n{i}", cpu="2", memory="4Gi") for i in range(150)])
    fw = framework(cache, config)
    for i in range(300):
        pod = info(make_pod(f"p{i}", cpu="1", memory="1Gi"))
        cache.assume(pod, fw.schedule(pod).node)
    assert all(n.requested.milli_cpu == 2000 for n in cache.node_list)
    with pytest.raises(FitError):
        fw.schedule(info(make_pod("extra", cpu="1")))


def test_nominated_pods_hold_their_room_against_lower_priority() -> None:
    cache = cluster([make_node("a", cpu="1"), make_node("b", cpu="1")])
    cache.add_nominated(info(make_pod("vip", cpu="1", priority=100)), "a")
    fw = framework(cache)
    assert {fw.schedule(info(make_pod(f"low{i}", cpu="1", priority=1))).node for i in range(20)} == {"b"}
    higher = info(make_pod("higher", cpu="1", priority=1000))
    assert {fw.schedule(higher).node for _ in range(20)} == {"a", "b"}


def test_a_pod_with_a_nominated_node_goes_there_when_it_fits() -> None:
    cache = cluster([make_node(f"n{i}") for i in range(5)])
    pod = make_pod()
    pod.status.nominated_node_name = "n3"
    assert framework(cache).schedule(info(pod)).node == "n3"


def test_node_removed_and_changed() -> None:
    cache = cluster([make_node("a"), make_node("b")])
    fw = framework(cache)
    pod = make_pod(node_selector={"role": "db"})
    with pytest.raises(FitError):
        fw.schedule(info(pod))
    cache.add_node(make_node("b", labels={"role": "db"}))
    assert fw.schedule(info(pod)).node == "b"
    cache.remove_node("b")
    with pytest.raises(FitError) as error:
        fw.schedule(info(pod))
    assert error.value.num_nodes == 1


def test_ties_are_broken_uniformly_among_the_best_nodes_only() -> None:
    cache = cluster([make_node(f"n{i}") for i in range(5)])
    fw = framework(cache)
    nodes = list(cache.node_list)
    totals = [5, 9, 9, 3, 9]
    picks = [fw._select(nodes, totals).name for _ in range(600)]
    assert set(picks) == {"n1", "n2", "n4"}
    assert all(150 < picks.count(name) < 250 for name in ("n1", "n2", "n4"))
    assert fw._select(nodes, [1, 2, 7, 3, 4]).name == "n2"
