"""Prometheus metrics of the controller-manager: syncs and their latency per controller, and
queue depth, the figures that show whether a controller keeps up (DESIGN.md section 9)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SYNCS = Counter("pinnace_controller_syncs_total", "Syncs by controller and result", ["controller", "result"])
SYNC_LATENCY = Histogram(
    "pinnace_controller_sync_duration_seconds",
    "Duration of one sync",
    ["controller"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUEUE_DEPTH = Gauge("pinnace_controller_queue_depth", "Keys waiting in a controller's queue", ["controller"])
LEADER = Gauge("pinnace_controller_manager_leader", "1 while this instance leads")
