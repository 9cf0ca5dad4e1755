"""The cache's confirmation of an assumed pod: the binding's update reuses the PodInfo parsed
for the cycle only when the binding is all that changed."""

from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.scheduler.cache import Cache
from tests.unit.scheduler.helpers import cluster, info, make_node, make_pod


def _bound(pod: core_pb2.Pod, node: str) -> core_pb2.Pod:
    """What the watch delivers after the binding: a new object with the node and condition."""
    bound = core_pb2.Pod()
    bound.CopyFrom(pod)
    bound.spec.node_name = node
    bound.status.conditions.add(type="PodScheduled", status="True")
    bound.metadata.resource_version = "2"
    return bound


def _assumed(cache: Cache, node: str = "n1", **kwargs: object) -> tuple[core_pb2.Pod, object]:
    pod = make_pod("web", cpu="1", labels={"app": "web"}, **kwargs)  # type: ignore[arg-type]
    parsed = info(pod)
    cache.assume(parsed, node)
    return pod, parsed


def test_the_binding_update_confirms_the_assumed_pod_without_parsing_it_again() -> None:
    cache = cluster([make_node("n1"), make_node("n2")])
    pod, parsed = _assumed(cache)
    generation = cache.nodes["n1"].generation
    bound = _bound(pod, "n1")
    assert cache.confirm(pod, bound)
    assert not cache.is_assumed("default/web")
    kept = cache.pods["default/web"]
    assert kept is parsed and kept.pod is bound and kept.node_name == "n1"
    assert cache.nodes["n1"].pods["default/web"] is parsed
    # Nothing the cycle reads of n1 changed: its equivalence entries stay valid.
    assert cache.nodes["n1"].generation == generation
    assert cache.nodes["n1"].requested.milli_cpu == 1000
    # A second update of the now-confirmed pod is an ordinary one.
    assert not cache.confirm(bound, _bound(bound, "n1"))


def test_anything_besides_the_binding_falls_back_to_a_full_add() -> None:
    cache = cluster([make_node("n1"), make_node("n2")])
    pod, _ = _assumed(cache)
    # The update came from an object the PodInfo was not parsed from (a write in between).
    other = core_pb2.Pod()
    other.CopyFrom(pod)
    assert not cache.confirm(other, _bound(pod, "n1"))
    # Bound elsewhere than assumed (another scheduler won).
    assert not cache.confirm(pod, _bound(pod, "n2"))
    # Labels changed in the same update (a relist folding several writes).
    relabelled = _bound(pod, "n1")
    relabelled.metadata.labels["app"] = "db"
    assert not cache.confirm(pod, relabelled)
    # Being deleted, or already started.
    deleting = _bound(pod, "n1")
    deleting.metadata.deletion_timestamp.FromSeconds(1)
    assert not cache.confirm(pod, deleting)
    started = _bound(pod, "n1")
    started.status.start_time.FromSeconds(1)
    assert not cache.confirm(pod, started)
    # Another pod with the same name (recreated: new uid).
    recreated = _bound(pod, "n1")
    recreated.metadata.uid = "another"
    assert not cache.confirm(pod, recreated)
    assert cache.is_assumed("default/web")


def test_a_pod_that_was_never_assumed_is_not_confirmed() -> None:
    cache = cluster([make_node("n1")])
    pod = make_pod("web", cpu="1")
    assert not cache.confirm(pod, _bound(pod, "n1"))
    assert "default/web" not in cache.pods
