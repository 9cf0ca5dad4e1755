"""Prometheus metrics with kube-scheduler's names: attempts by result, scheduling latency,
pending pods per queue, preemption, and the hit rates of the Borg caches."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

SCHEDULE_ATTEMPTS = Counter(
    "scheduler_schedule_attempts_total",
    "Scheduling attempts by result (scheduled, unschedulable, error).",
    ["result", "profile"],
)
ATTEMPT_DURATION = Histogram(
    "scheduler_scheduling_attempt_duration_seconds",
    "One scheduling cycle (filter, score, assume), by result.",
    ["result", "profile"],
    buckets=LATENCY_BUCKETS,
)
E2E_LATENCY = Histogram(
    "scheduler_pod_scheduling_duration_seconds",
    "From a pod entering the queue to its binding succeeding (all attempts).",
    ["profile"],
    buckets=LATENCY_BUCKETS,
)
BINDING_DURATION = Histogram(
    "scheduler_binding_duration_seconds", "The binding API call.", ["profile"], buckets=LATENCY_BUCKETS
)
PENDING_PODS = Gauge("scheduler_pending_pods", "Pods waiting, by queue.", ["queue", "profile"])
PREEMPTION_ATTEMPTS = Counter("scheduler_preemption_attempts_total", "Preemption attempts.", ["profile"])
PREEMPTION_VICTIMS = Histogram(
    "scheduler_preemption_victims",
    "Pods evicted per preemption.",
    ["profile"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
CACHE_LOOKUPS = Counter(
    "scheduler_cache_lookups_total",
    "Equivalence-class (filter) and score cache lookups, by cache and result (hit, miss).",
    ["cache", "result", "profile"],
)
