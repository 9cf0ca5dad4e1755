"""The Priority admission plugin (services/apiserver/admission/priority.py) on a real apiserver."""

from __future__ import annotations

import pytest

from pinnace.api.scheduling.v1 import scheduling_pb2
from services.client.errors import ForbiddenError
from tests.unit.scheduler.test_scenarios import api_pod


def priority_class(
    name: str, value: int, default: bool = False, policy: str = ""
) -> scheduling_pb2.PriorityClass:
    pc = scheduling_pb2.PriorityClass(value=value, global_default=default)
    pc.metadata.name = name
    if policy:
        pc.preemption_policy = policy
    return pc


async def test_class_name_resolves_to_priority_and_policy(client) -> None:
    await client.create(priority_class("batch", 50, policy="Never"))
    pod = await client.create(api_pod("p", priority_class_name="batch"))
    assert (pod.spec.priority, pod.spec.preemption_policy) == (50, "Never")


async def test_no_class_and_no_default_is_zero(client) -> None:
    pod = await client.create(api_pod("p"))
    assert (pod.spec.priority, pod.spec.priority_class_name, pod.spec.preemption_policy) == (
        0,
        "",
        "PreemptLowerPriority",
    )


async def test_global_default_applies_and_is_unique(client) -> None:
    await client.create(priority_class("standard", 7, default=True))
    pod = await client.create(api_pod("p"))
    assert (pod.spec.priority, pod.spec.priority_class_name) == (7, "standard")
    with pytest.raises(ForbiddenError, match="already marked as default"):
        await client.create(priority_class("other", 9, default=True))


async def test_unknown_class_is_refused(client) -> None:
    with pytest.raises(ForbiddenError, match="no PriorityClass with name nope was found"):
        await client.create(api_pod("p", priority_class_name="nope"))


async def test_system_classes_always_exist(client) -> None:
    node = await client.create(
        api_pod("n", namespace="kube-system", priority_class_name="system-node-critical")
    )
    cluster = await client.create(
        api_pod("c", namespace="kube-system", priority_class_name="system-cluster-critical")
    )
    assert (node.spec.priority, cluster.spec.priority) == (2000001000, 2000000000)


async def test_a_stated_priority_must_match_the_class(client) -> None:
    await client.create(priority_class("batch", 50))
    with pytest.raises(ForbiddenError, match="must not be provided in pod spec"):
        await client.create(api_pod("p", priority_class_name="batch", priority=99))
    pod = await client.create(api_pod("q", priority_class_name="batch", priority=50))
    assert pod.spec.priority == 50
