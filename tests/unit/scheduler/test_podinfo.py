"""Requests as a pod is parsed: the plain sum and the non-zero sum scores use (Kubernetes'
defaults, 100m cpu and 200Mi memory, for a container that requests neither)."""

from __future__ import annotations

import pytest

from services.scheduler.resources import DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST
from tests.unit.scheduler.helpers import info, make_pod

MI = 1024 * 1024


@pytest.mark.parametrize(
    ("kwargs", "request_", "non_zero"),
    [
        # Everything requested: the non-zero sum is the plain sum.
        ({"cpu": "500m", "memory": "64Mi"}, (500, 64 * MI), (500, 64 * MI)),
        (
            {"cpu": "500m", "memory": "64Mi", "init": [{"cpu": "2", "memory": "1Mi"}]},
            (2000, 64 * MI),
            (2000, 64 * MI),
        ),
        # No memory request: counted as 200Mi for scores, 0 for fit.
        ({"cpu": "500m"}, (500, 0), (500, DEFAULT_MEMORY_REQUEST)),
        # Nothing requested.
        ({}, (0, 0), (DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST)),
        # An init container without a cpu request raises the non-zero cpu to the default.
        ({"cpu": "50m", "memory": "64Mi", "init": [{"memory": "1Mi"}]}, (50, 64 * MI), (100, 64 * MI)),
    ],
)
def test_plain_and_non_zero_requests(
    kwargs: dict, request_: tuple[int, int], non_zero: tuple[int, int]
) -> None:
    parsed = info(make_pod(**kwargs))
    assert (parsed.request.milli_cpu, parsed.request.memory) == request_
    assert (parsed.non_zero_cpu, parsed.non_zero_memory) == non_zero


def test_affinity_is_parsed_only_when_set() -> None:
    plain = info(make_pod("plain"))
    assert plain.required_node_terms is None and plain.preferred_node_terms == ()
    assert not plain.has_affinity
    pod = make_pod("web", labels={"app": "web"})
    term = pod.spec.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution.add(
        topology_key="kubernetes.io/hostname"
    )
    term.label_selector.match_labels["app"] = "web"
    parsed = info(pod)
    # Only pod anti-affinity is set: node affinity stays "no requirement", not "match nothing".
    assert parsed.required_node_terms is None
    assert [t.topology_key for t in parsed.required_anti_affinity] == ["kubernetes.io/hostname"]
    assert parsed.required_anti_affinity[0].namespaces == frozenset({"default"})
    assert parsed.has_affinity and not parsed.required_affinity
