from __future__ import annotations

from collections.abc import Mapping

from services.client.client import Client
from services.controllers.podautoscaler import HorizontalPodAutoscalerController, recommend
from services.controllers.replicaset import ReplicaSetController
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import FakeKubelet, Harness, until

RS = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: c, image: "pinnace/busybox:1.0", resources: {requests: {cpu: 100m}}}
"""

HPA = """
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: ReplicaSet, name: web}
  minReplicas: 1
  maxReplicas: 6
  targetCPUUtilizationPercentage: 50
"""


class FakeMetrics:
    """A total CPU load shared evenly by the running pods, as a load balancer would spread it."""

    def __init__(self) -> None:
        self.total = 0

    async def pod_cpu_millicores(self, namespace: str, pods: list[str]) -> Mapping[str, int]:
        return dict.fromkeys(pods, self.total // max(len(pods), 1))


def replicas_are(client: Client, n: int):
    async def check() -> bool:
        return (await client.get("replicasets", "web", "default")).spec.replicas == n

    return check


async def test_scales_up_on_load_and_down_after_stabilization(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    metrics = FakeMetrics()
    harness.add(ReplicaSetController)
    harness.add(HorizontalPodAutoscalerController, metrics=metrics)
    await harness.start()
    await client.create(manifest(RS))

    async def running() -> bool:
        return (await client.get("replicasets", "web", "default")).status.ready_replicas == 2

    await until(running)
    metrics.total = 200  # 100 % of each pod's request against a 50 % target: double
    await client.create(manifest(HPA))
    await until(replicas_are(client, 4))

    async def status() -> bool:
        hpa = await client.get("horizontalpodautoscalers", "web", "default")
        return hpa.status.current_cpu_utilization_percentage == 50 and hpa.status.desired_replicas == 4

    await until(status)
    metrics.total = 208  # 52 % per pod: within the 10 % tolerance of the target, no change
    await until(lambda: _utilization_is(client, 52))
    assert (await client.get("replicasets", "web", "default")).spec.replicas == 4
    metrics.total = 40  # light load: scale down, but only after the stabilization window
    await until(replicas_are(client, 1), timeout=10)
    await harness.recorder.flush()
    reasons = {e.reason for e in (await client.list("events", "default")).items}
    assert "SuccessfulRescale" in reasons


async def _utilization_is(client: Client, value: int) -> bool:
    return (
        await client.get("horizontalpodautoscalers", "web", "default")
    ).status.current_cpu_utilization_percentage == value


async def test_without_metrics_nothing_scales(client: Client, harness: Harness, kubelet: FakeKubelet) -> None:
    harness.add(ReplicaSetController)
    harness.add(HorizontalPodAutoscalerController)
    await harness.start()
    await client.create(manifest(RS))
    await client.create(manifest(HPA))

    async def warned() -> bool:
        events = (
            await client.list("events", "default", field_selector="reason=FailedGetResourceMetric")
        ).items
        return bool(events)

    await until(warned)
    assert (await client.get("replicasets", "web", "default")).spec.replicas == 2


def test_recommendation() -> None:
    assert recommend(2, 100, 50, 0.1) == 4
    assert recommend(4, 52, 50, 0.1) == 4
    assert recommend(4, 10, 50, 0.1) == 1
    assert recommend(3, 70, 50, 0.1) == 5
