"""The pods/eviction subresource against PodDisruptionBudgets (Kubernetes' EvictionREST)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pinnace.api.core.v1 import core_pb2
from pinnace.api.policy.v1 import policy_pb2
from services.client import errors
from services.client.client import Client
from tests.unit.apiserver.helpers import manifest, pod

BUDGET = """
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: {name}, namespace: default}}
spec:
  minAvailable: 2
  selector: {{matchLabels: {{app: web}}}}
"""


async def running(
    client: Client, name: str, *, ready: bool = True, labels: dict[str, str] | None = None
) -> Any:
    await client.create(pod(name, labels=labels if labels is not None else {"app": "web"}, node="n1"))
    current = await client.get("pods", name, "default")
    assert isinstance(current, core_pb2.Pod)
    current.status.phase = "Running"
    current.status.conditions.add(type="Ready", status="True" if ready else "False")
    return await client.update_status(current)


async def budget(
    client: Client,
    name: str = "web",
    *,
    allowed: int,
    healthy: int = 3,
    desired: int = 2,
    observed: bool = True,
) -> policy_pb2.PodDisruptionBudget:
    created = await client.create(manifest(BUDGET.format(name=name)))
    created.status.disruptions_allowed = allowed
    created.status.current_healthy = healthy
    created.status.desired_healthy = desired
    created.status.expected_pods = healthy
    created.status.observed_generation = created.metadata.generation if observed else 0
    updated = await client.update_status(created)
    assert isinstance(updated, policy_pb2.PodDisruptionBudget)
    return updated


async def get_budget(client: Client, name: str = "web") -> policy_pb2.PodDisruptionBudget:
    found = await client.get("poddisruptionbudgets", name, "default")
    assert isinstance(found, policy_pb2.PodDisruptionBudget)
    return found


async def terminating(client: Client, name: str) -> bool:
    found = await client.get("pods", name, "default")
    return found.metadata.HasField("deletion_timestamp")


async def test_eviction_spends_the_budget_then_refuses(client: Client) -> None:
    for name in ("a", "b", "c"):
        await running(client, name)
    await budget(client, allowed=1)
    await client.evict("a", "default")
    assert await terminating(client, "a")
    spent = await get_budget(client)
    assert spent.status.disruptions_allowed == 0
    assert list(spent.status.disrupted_pods) == ["a"]
    assert [(c.type, c.status, c.reason) for c in spent.status.conditions] == [
        ("DisruptionAllowed", "False", "InsufficientPods")
    ]
    with pytest.raises(errors.TooManyRequestsError) as refused:
        await client.evict("b", "default")
    assert refused.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert [(c.reason, c.message) for c in refused.value.causes] == [
        ("DisruptionBudget", "The disruption budget web needs 2 healthy pods and has 3 currently")
    ]
    assert not await terminating(client, "b")
    assert (await get_budget(client)).status == spent.status


async def test_racing_evictions_take_the_last_disruption_once(client: Client) -> None:
    names = [f"p{i}" for i in range(4)]
    for name in names:
        await running(client, name)
    await budget(client, allowed=1, healthy=4, desired=3)
    results = await asyncio.gather(*(client.evict(n, "default") for n in names), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, errors.TooManyRequestsError) for r in results if r is not None)
    assert sum([await terminating(client, n) for n in names]) == 1
    assert (await get_budget(client)).status.disruptions_allowed == 0


async def test_pods_that_disrupt_nothing_ignore_the_budget(client: Client) -> None:
    await budget(client, allowed=0)
    await client.create(pod("pending", labels={"app": "web"}))
    await client.evict("pending", "default")  # never bound: deleted at once
    with pytest.raises(errors.NotFoundError):
        await client.get("pods", "pending", "default")
    finished = await running(client, "done")
    finished.status.phase = "Succeeded"
    await client.update_status(finished)
    await client.evict("done", "default")
    with pytest.raises(errors.NotFoundError):
        await client.get("pods", "done", "default")
    assert (await get_budget(client)).status.disruptions_allowed == 0


async def test_pods_outside_the_selector_or_namespace_are_not_covered(client: Client) -> None:
    await budget(client, allowed=0)
    await running(client, "other", labels={"app": "db"})
    await client.evict("other", "default")
    assert await terminating(client, "other")


async def test_unready_pod_goes_when_the_budget_is_met_anyway(client: Client) -> None:
    await running(client, "sick", ready=False)
    await budget(client, allowed=0, healthy=2, desired=2)
    await client.evict("sick", "default")
    assert await terminating(client, "sick")
    assert not (await get_budget(client)).status.disrupted_pods


async def test_unready_pod_is_guarded_while_the_budget_is_short(client: Client) -> None:
    await running(client, "sick", ready=False)
    await budget(client, allowed=0, healthy=1, desired=2)
    with pytest.raises(errors.TooManyRequestsError):
        await client.evict("sick", "default")
    shortage = await get_budget(client)
    shortage.spec.unhealthy_pod_eviction_policy = "AlwaysAllow"
    await client.update(shortage)
    refreshed = await get_budget(client)
    refreshed.status.observed_generation = refreshed.metadata.generation
    await client.update_status(refreshed)
    await client.evict("sick", "default")
    assert await terminating(client, "sick")


async def test_budget_not_yet_processed_refuses_with_retry_after(client: Client) -> None:
    await running(client, "a")
    await budget(client, allowed=3, observed=False)
    with pytest.raises(errors.TooManyRequestsError) as refused:
        await client.evict("a", "default")
    assert refused.value.retry_after == 10
    assert "is still being processed by the server" in refused.value.causes[0].message
    assert not await terminating(client, "a")


async def test_two_budgets_on_one_pod_are_refused(client: Client) -> None:
    await running(client, "a")
    await budget(client, "one", allowed=1)
    await budget(client, "two", allowed=1)
    with pytest.raises(errors.APIStatusError) as refused:
        await client.evict("a", "default")
    assert refused.value.status.reason == "InternalError"
    assert refused.value.message == (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    )
    assert not await terminating(client, "a")
    assert (await get_budget(client, "one")).status.disruptions_allowed == 1


async def test_eviction_of_a_missing_pod_is_not_found(client: Client) -> None:
    with pytest.raises(errors.NotFoundError):
        await client.evict("ghost", "default")


async def test_invalid_budget_is_refused(client: Client) -> None:
    bad = manifest(BUDGET.format(name="bad"))
    bad.spec.max_unavailable.str_val = "150%"
    with pytest.raises(errors.InvalidError, match="minAvailable and maxUnavailable cannot be both set"):
        await client.create(bad)
    with pytest.raises(errors.NotFoundError):
        await client.get("poddisruptionbudgets", "bad", "default")
