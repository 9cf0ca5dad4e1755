"""kube-proxy's Prometheus metrics, named as Kubernetes names them (kubeproxy_*), so existing
dashboards and alerts apply."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SYNC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120)


class ProxyMetrics:
    """One set per proxy, in its own registry (tests run several proxies in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sync_duration = Histogram(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "Any sync, start to rules in place",
            buckets=_SYNC_BUCKETS,
            registry=r,
        )
        self.full_sync_duration = Histogram(
            "kubeproxy_sync_full_proxy_rules_duration_seconds",
            "Full syncs",
            buckets=_SYNC_BUCKETS,
            registry=r,
        )
        self.partial_sync_duration = Histogram(
            "kubeproxy_sync_partial_proxy_rules_duration_seconds",
            "Partial syncs (changed services only)",
            buckets=_SYNC_BUCKETS,
            registry=r,
        )
        self.network_programming = Histogram(
            "kubeproxy_network_programming_duration_seconds",
            "From an Endpoints change (its trigger-time annotation, else when the proxy saw it) "
            "to the rules being in place",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.rules = Gauge(
            "kubeproxy_sync_proxy_rules_iptables_total",
            "Rules kube-proxy owns, per table",
            ["table"],
            registry=r,
        )
        self.last_sync = Gauge(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds", "When the last sync succeeded", registry=r
        )
        self.sync_failures = Counter(
            "kubeproxy_sync_proxy_rules_failures_total",
            "Syncs that failed (retried as full syncs)",
            registry=r,
        )
