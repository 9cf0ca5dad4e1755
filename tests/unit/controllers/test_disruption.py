"""The disruption controller against the in-process apiserver: PodDisruptionBudget status for
integer and percentage budgets, evictions spending and returning the budget."""

from __future__ import annotations

from typing import Any

import pytest

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from pinnace.api.policy.v1 import policy_pb2
from services.client import errors
from services.client.client import Client
from services.controllers.deployment import DeploymentController
from services.controllers.disruption import DisruptionController, allowed, healthy_count
from services.controllers.podutil import is_active
from services.controllers.replicaset import ReplicaSetController
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.controllers.fakes import FakeKubelet, Harness, until

RS = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: default}
spec:
  replicas: 4
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
"""


def budget(app: str, **spec: Any) -> Any:
    obj = manifest(f"""
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: {app}, namespace: default}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
""")
    for field, value in spec.items():
        target = getattr(obj.spec, field)
        if isinstance(value, int):
            target.int_val = value
        else:
            target.str_val = value
    return obj


async def status(client: Client, name: str) -> policy_pb2.PodDisruptionBudgetStatus:
    found = await client.get("poddisruptionbudgets", name, "default")
    assert isinstance(found, policy_pb2.PodDisruptionBudget)
    return found.status


def status_is(client: Client, name: str, **wanted: int):
    async def check() -> bool:
        got = await status(client, name)
        return all(getattr(got, k) == v for k, v in wanted.items())

    return check


async def web_pods(client: Client, app: str = "web") -> list[core_pb2.Pod]:
    return [
        p for p in (await client.list("pods", "default", label_selector=f"app={app}")).items if is_active(p)
    ]


async def test_integer_budget_status_and_eviction_round_trip(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(ReplicaSetController)
    harness.add(DisruptionController)
    await harness.start()
    await client.create(manifest(RS))
    await client.create(budget("web", min_available=2))
    await until(
        status_is(client, "web", expected_pods=3, desired_healthy=2, current_healthy=3, disruptions_allowed=1)
    )
    settled = await status(client, "web")
    found = await client.get("poddisruptionbudgets", "web", "default")
    assert settled.observed_generation == found.metadata.generation
    assert [(c.type, c.status, c.reason) for c in settled.conditions] == [
        ("DisruptionAllowed", "True", "SufficientPods")
    ]
    victim, second = (await web_pods(client))[:2]
    await client.evict(victim.metadata.name, "default")
    with pytest.raises(errors.TooManyRequestsError):
        await client.evict(second.metadata.name, "default")
    # The replacement becomes Ready and the evicted pod is gone: the budget is whole again.
    await until(status_is(client, "web", current_healthy=3, disruptions_allowed=1))
    assert not (await status(client, "web")).disrupted_pods
    await client.evict(second.metadata.name, "default")


async def test_percentages_use_the_controllers_scale(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(ReplicaSetController)
    harness.add(DeploymentController)
    harness.add(DisruptionController)
    await harness.start()
    await client.create(manifest(RS))
    await client.create(manifest(DEPLOYMENT))
    await client.create(budget("web", max_unavailable="34%"))  # ceil(3 x 0.34) = 2 may go
    await client.create(budget("api", min_available="50%"))  # of the Deployment's 4: 2
    await until(status_is(client, "web", expected_pods=3, desired_healthy=1, disruptions_allowed=2))
    await until(status_is(client, "api", expected_pods=4, desired_healthy=2, current_healthy=4))
    assert (await status(client, "api")).disruptions_allowed == 2


async def test_unready_pods_are_not_healthy(client: Client, harness: Harness, kubelet: FakeKubelet) -> None:
    harness.add(ReplicaSetController)
    harness.add(DisruptionController)
    await harness.start()
    await client.create(manifest(RS))
    await client.create(budget("web", max_unavailable=1))
    await until(status_is(client, "web", current_healthy=3, disruptions_allowed=1))
    sick = (await web_pods(client))[0]
    await kubelet.set_status("default", sick.metadata.name, phase="Running", ready=False)
    await until(status_is(client, "web", expected_pods=3, desired_healthy=2, current_healthy=2))
    got = await status(client, "web")
    assert got.disruptions_allowed == 0
    assert [(c.status, c.reason) for c in got.conditions] == [("False", "InsufficientPods")]


async def test_missing_controller_fails_safe(client: Client, harness: Harness) -> None:
    harness.add(DisruptionController)
    await harness.start()
    orphan = pod("lost", labels={"app": "gone"}, node="n1")
    orphan.metadata.owner_references.append(
        meta_pb2.OwnerReference(
            api_version="apps/v1", kind="ReplicaSet", name="gone", uid="u-1", controller=True
        )
    )
    await client.create(orphan)
    await client.create(budget("gone", max_unavailable=1))

    async def failed() -> bool:
        got = await status(client, "gone")
        return [(c.status, c.reason) for c in got.conditions] == [("False", "SyncFailed")]

    await until(failed)
    got = await status(client, "gone")
    assert got.disruptions_allowed == 0
    assert got.conditions[0].message == 'found no controllers for pod "lost"'


async def test_unmanaged_pods_count_only_for_integer_budgets(client: Client, harness: Harness) -> None:
    harness.add(DisruptionController)
    await harness.start()
    for name in ("a", "b"):
        bare = pod(name, labels={"app": "bare"}, node="n1")
        created = await client.create(bare)
        created.status.phase = "Running"
        created.status.conditions.add(type="Ready", status="True")
        await client.update_status(created)
    await client.create(budget("bare", min_available=1))
    await until(status_is(client, "bare", expected_pods=2, desired_healthy=1, disruptions_allowed=1))
    current = await client.get("poddisruptionbudgets", "bare", "default")
    current.spec.ClearField("min_available")
    current.spec.max_unavailable.int_val = 1
    await client.update(current)
    # No controller to take a scale from: nothing expected, nothing allowed.
    await until(status_is(client, "bare", expected_pods=0, desired_healthy=0, disruptions_allowed=0))


def _ready_pod(name: str, *, deleting: bool = False) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.status.conditions.add(type="Ready", status="True")
    if deleting:
        p.metadata.deletion_timestamp.FromSeconds(1)
    return p


def test_healthy_count_skips_deleting_and_recently_evicted_pods() -> None:
    pods = [_ready_pod("a"), _ready_pod("b", deleting=True), _ready_pod("c"), _ready_pod("d")]
    now = 1000.0
    disrupted = {"c": now - 10, "d": now - 121}  # d's eviction is older than the 2-minute timeout
    assert healthy_count(pods, disrupted, now) == 2


def test_allowed_is_never_negative_and_zero_without_expected_pods() -> None:
    assert allowed(3, 2, 3) == 1
    assert allowed(1, 2, 3) == 0
    assert allowed(5, 0, 0) == 0
