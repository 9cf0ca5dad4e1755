"""The HorizontalPodAutoscaler (autoscaling/v1: CPU utilisation).

Every `hpa_sync_period` (15 s by default) each HPA reads its target's scale subresource
(replicas and the pod selector), the CPU usage of the selected pods from a MetricsSource, and
their CPU requests; then

    utilisation = 100 * sum(usage) / sum(requests)
    desired     = ceil(current * utilisation / target)   unless |utilisation/target - 1| <= 10 %

clamped to [minReplicas, maxReplicas] and to at most max(2 * current, 4) per step. Scaling
down uses the highest recommendation of the last `hpa_downscale_stabilization` seconds (5 min),
so a brief dip does not remove pods a returning load needs. It scales through the scale
subresource and reports currentCPUUtilizationPercentage, with Events for every rescale and
every failure to read metrics.

The usage comes from a MetricsSource: by default KubeletMetrics (hpa_metrics.py), which reads
the kubelets' stats summaries through the apiserver as metrics-server would; the tests drive
the controller with a fake source."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from typing import Protocol

from google.protobuf.message import Message

from pinnace.api.autoscaling.v1 import autoscaling_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.errors import APIStatusError, NotFoundError
from services.client.events import NORMAL, WARNING
from services.controllers.base import Controller, ControllerContext, object_key, split_key
from services.controllers.hpa_metrics import KubeletMetrics
from services.controllers.podutil import now_ts
from services.machinery import labels
from services.machinery.quantity import parse_quantity

SCALABLE = {
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "ReplicationController": "replicationcontrollers",
    "StatefulSet": "statefulsets",
}
DEFAULT_TARGET = 80


class MetricsSource(Protocol):
    async def pod_cpu_millicores(self, namespace: str, pods: list[str]) -> Mapping[str, int]:
        """CPU usage (millicores) of the named pods that have a recent sample."""
        ...


def cpu_request_millicores(pod: core_pb2.Pod) -> int | None:
    total = 0
    for container in pod.spec.containers:
        request = container.resources.requests.get("cpu")
        if request is None:
            return None
        total += parse_quantity(request).milli_value()
    return total


def recommend(current: int, utilization: float, target: int, tolerance: float) -> int:
    ratio = utilization / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    return math.ceil(current * ratio)


class HorizontalPodAutoscalerController(Controller):
    name = "horizontalpodautoscaling"
    default_workers = 2

    def __init__(self, ctx: ControllerContext, metrics: MetricsSource | None = None) -> None:
        super().__init__(ctx)
        self.hpas = self.informer("horizontalpodautoscalers")
        self.pods = self.informer("pods")
        self.metrics: MetricsSource = metrics or KubeletMetrics(self.client.node_proxy, self._node_of)
        self.hpas.add_handlers(
            on_add=self.enqueue_obj, on_update=self._hpa_updated, on_delete=self._hpa_deleted
        )
        self.recommendations: dict[str, list[tuple[float, int]]] = {}

    def _node_of(self, namespace: str, name: str) -> str:
        pod = self.pods.store.get(f"{namespace}/{name}")
        return pod.spec.node_name if isinstance(pod, core_pb2.Pod) else ""

    def _hpa_updated(self, old: Message, new: Message) -> None:
        if old.spec != new.spec:  # type: ignore[attr-defined]
            self.enqueue_obj(new)

    def _hpa_deleted(self, hpa: Message) -> None:
        self.recommendations.pop(object_key(hpa), None)

    async def background(self) -> None:
        while True:
            await asyncio.sleep(self.settings.hpa_sync_period)
            for hpa in self.hpas.store.list():
                self.enqueue_obj(hpa)

    async def sync(self, key: str) -> None:
        cached = self.hpas.store.get(key)
        if not isinstance(cached, autoscaling_pb2.HorizontalPodAutoscaler):
            return
        hpa = autoscaling_pb2.HorizontalPodAutoscaler()
        hpa.CopyFrom(cached)
        namespace, _ = split_key(key)
        ref = hpa.spec.scale_target_ref
        resource = SCALABLE.get(ref.kind)
        if resource is None:
            self.recorder.event(
                hpa, WARNING, "FailedGetScale", f"the HPA controller cannot scale kind {ref.kind!r}"
            )
            return
        try:
            scale = await self.client.get_scale(resource, ref.name, namespace)
        except APIStatusError as exc:
            self.recorder.event(hpa, WARNING, "FailedGetScale", str(exc))
            return
        current = scale.spec.replicas
        status = autoscaling_pb2.HorizontalPodAutoscalerStatus()
        status.CopyFrom(hpa.status)
        status.observed_generation = hpa.metadata.generation
        status.current_replicas = scale.status.replicas
        if current == 0 and hpa.spec.min_replicas != 0:
            status.desired_replicas = 0  # scaled to zero by hand: autoscaling is off
            await self._write(hpa, status)
            return
        utilization = await self._utilization(hpa, namespace, scale.status.selector)
        if utilization is None:
            status.desired_replicas = current
            await self._write(hpa, status)
            return
        target = (
            hpa.spec.target_cpu_utilization_percentage
            if hpa.spec.HasField("target_cpu_utilization_percentage")
            else DEFAULT_TARGET
        )
        status.current_cpu_utilization_percentage = round(utilization)
        raw = recommend(current, utilization, target, self.settings.hpa_tolerance)
        low = hpa.spec.min_replicas if hpa.spec.HasField("min_replicas") else 1
        bounded = max(low, min(hpa.spec.max_replicas, raw, max(2 * current, 4)))
        desired = self._stabilized(key, bounded, current)
        status.desired_replicas = desired
        if desired != current:
            try:
                await self.client.scale(resource, ref.name, desired, namespace)
            except APIStatusError as exc:
                self.recorder.event(hpa, WARNING, "FailedRescale", f"New size: {desired}; error: {exc}")
                raise
            direction = "above" if desired > current else "below"
            self.recorder.event(
                hpa,
                NORMAL,
                "SuccessfulRescale",
                f"New size: {desired}; reason: cpu resource utilization (percentage of request) "
                f"{direction} target",
            )
            status.last_scale_time.CopyFrom(now_ts())
        await self._write(hpa, status)

    async def _utilization(
        self, hpa: autoscaling_pb2.HorizontalPodAutoscaler, namespace: str, selector_text: str
    ) -> float | None:
        try:
            selector = labels.parse(selector_text)
        except labels.SelectorError as exc:
            self.recorder.event(hpa, WARNING, "FailedGetResourceMetric", f"invalid selector: {exc}")
            return None
        pods = [
            p
            for p in self.pods.store.by_index("namespace", namespace)
            if isinstance(p, core_pb2.Pod)
            and selector.matches(p.metadata.labels)
            and p.status.phase == "Running"
            and not p.metadata.HasField("deletion_timestamp")
        ]
        if not pods:
            self.recorder.event(
                hpa, WARNING, "FailedGetResourceMetric", "no running pods match the target's selector"
            )
            return None
        usage = await self.metrics.pod_cpu_millicores(namespace, [p.metadata.name for p in pods])
        requested = used = 0
        for pod in pods:
            if pod.metadata.name not in usage:
                continue
            request = cpu_request_millicores(pod)
            if request is None or request == 0:
                self.recorder.event(
                    hpa,
                    WARNING,
                    "FailedGetResourceMetric",
                    f"missing request for cpu in pod {pod.metadata.name}",
                )
                return None
            requested += request
            used += usage[pod.metadata.name]
        if requested == 0:
            self.recorder.event(
                hpa,
                WARNING,
                "FailedGetResourceMetric",
                "unable to get metrics for resource cpu: no metrics returned",
            )
            return None
        return 100.0 * used / requested

    def _stabilized(self, key: str, recommendation: int, current: int) -> int:
        """Scale up at once; scale down only to the highest recommendation of the window."""
        now = time.monotonic()
        window = self.settings.hpa_downscale_stabilization
        history = [(t, r) for t, r in self.recommendations.get(key, []) if now - t <= window]
        history.append((now, recommendation))
        self.recommendations[key] = history
        if recommendation >= current:
            return recommendation
        return min(current, max(r for _, r in history))

    async def _write(
        self,
        hpa: autoscaling_pb2.HorizontalPodAutoscaler,
        status: autoscaling_pb2.HorizontalPodAutoscalerStatus,
    ) -> None:
        if status == hpa.status:
            return
        hpa.status.CopyFrom(status)
        try:
            await self.client.update_status(hpa)
        except NotFoundError:
            return
