"""The kubelet's Prometheus metrics (DESIGN.md section 9): what an operator watches to know
that pods start fast, that the runtime answers, and how much runs on the node."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram

REGISTRY = CollectorRegistry()

POD_START_SECONDS = Histogram(
    "pinnace_kubelet_pod_start_duration_seconds",
    "From pod creation to every container started, as the kubelet observed it.",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120),
    registry=REGISTRY,
)
CRI_SECONDS = Histogram(
    "pinnace_kubelet_cri_operation_duration_seconds",
    "Latency of CRI calls, by method and outcome.",
    ["operation", "code"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RUNNING_PODS = Gauge("pinnace_kubelet_running_pods", "Pods with a ready sandbox.", registry=REGISTRY)
RUNNING_CONTAINERS = Gauge(
    "pinnace_kubelet_running_containers", "Containers in the running state.", registry=REGISTRY
)
POD_SYNC_SECONDS = Histogram(
    "pinnace_kubelet_pod_worker_duration_seconds",
    "Duration of one pod sync.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
