"""kube-proxy itself: informers on Services and Endpoints feed the change trackers, the sync
runner calls the mode's proxier with what changed, and healthz/metrics report how it goes.

The API client runs in the namespace the process started in; everything that touches the
node's network (rules, proxy sockets, child processes) runs on NodeNamespace threads, so the
same program serves a real node (no --netns) and a lab node namespace (docs/proxy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime

import structlog
from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.informer import Informer, object_key
from services.proxy import iptables_backend
from services.proxy.change_tracker import ChangeTracker
from services.proxy.config import ProxyConfig
from services.proxy.healthcheck import ServiceHealthServer
from services.proxy.healthz import HealthState, HTTPEndpoints
from services.proxy.iptables_mode.proxier import IptablesProxier
from services.proxy.iptables_mode.rules import RuleOptions
from services.proxy.metrics import ProxyMetrics
from services.proxy.mode import Proxier
from services.proxy.netns import NodeNamespace
from services.proxy.service_port import (
    TRIGGER_TIME_ANNOTATION,
    Endpoint,
    EndpointsMap,
    ServiceInfo,
    ServicesMap,
    endpoints_ports,
    service_ports,
)
from services.proxy.sync_runner import SyncRunner
from services.proxy.userspace.proxier import UserspaceProxier

log = structlog.get_logger("proxy")


def trigger_time(eps: Message) -> float:
    """When the Endpoints changed: the controller's annotation if set, else now."""
    value = eps.metadata.annotations.get(TRIGGER_TIME_ANNOTATION, "")  # type: ignore[attr-defined]
    if value:
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return time.time()


class KubeProxy:
    def __init__(
        self, config: ProxyConfig, client: Client | None = None, proxier: Proxier | None = None
    ) -> None:
        """`proxier` replaces the mode's proxier (unit tests use a recording double)."""
        self.config = config
        self.client = client or Client.connect(config.apiserver)
        self.metrics = ProxyMetrics()
        self.health = HealthState(config.sync_period)
        self.http = HTTPEndpoints(self.health, self.metrics)
        self.services: ServicesMap = {}
        self.endpoints: EndpointsMap = {}
        self.service_changes: ChangeTracker[ServiceInfo] = ChangeTracker()
        self.endpoint_changes: ChangeTracker[tuple[Endpoint, ...]] = ChangeTracker()
        self.rules_ns = NodeNamespace(config.netns, workers=1)
        self.sockets_ns = NodeNamespace(config.netns, workers=4)
        self.proxier: Proxier | None = proxier
        self.runner = SyncRunner(self._sync, config.min_sync_period, config.sync_period)
        # healthCheckNodePorts of Local LoadBalancer services (iptables mode, which honours Local).
        self.service_health = ServiceHealthServer(self.sockets_ns, config.node_name, self.health.healthy)
        self.ready = asyncio.Event()

    def _make_proxier(self, backend: iptables_backend.Backend) -> Proxier:
        cfg = self.config
        if cfg.mode == "userspace":
            return UserspaceProxier(
                backend,
                self.rules_ns,
                self.sockets_ns,
                host_ip=cfg.node_ip,
                listen_ip=cfg.bind_address,
                udp_idle_timeout=cfg.udp_idle_timeout,
            )
        options = RuleOptions(
            cluster_cidr=cfg.cluster_cidr,
            masquerade_all=cfg.masquerade_all,
            nodeport_addresses=tuple(cfg.nodeport_addresses),
            node_name=cfg.node_name,
        )
        return IptablesProxier(backend, self.rules_ns, options)

    # ------------------------------------------------------------------ informer handlers

    def _service_changed(self, obj: Message, deleted: bool = False) -> None:
        assert isinstance(obj, core_pb2.Service)
        self.service_changes.update(object_key(obj), {} if deleted else service_ports(obj))
        self.health.queued()
        self.runner.request()

    def _endpoints_changed(self, obj: Message, deleted: bool = False) -> None:
        assert isinstance(obj, core_pb2.Endpoints)
        value = {} if deleted else endpoints_ports(obj)
        # What the initial list delivers is state, not a change: it has no programming latency.
        when = trigger_time(obj) if self.ready.is_set() else None
        self.endpoint_changes.update(object_key(obj), value, when)
        self.health.queued()
        self.runner.request()

    # ------------------------------------------------------------------ sync

    async def _sync(self, full: bool) -> None:
        assert self.proxier is not None
        changed = self.service_changes.apply(self.services) | self.endpoint_changes.apply(self.endpoints)
        if not full and not changed:
            return
        start = time.perf_counter()
        try:
            result = await self.proxier.sync(self.services, self.endpoints, None if full else changed)
        except Exception:
            self.metrics.sync_failures.inc()
            raise
        if self.proxier.mode == "iptables":
            await self.service_health.sync(self.services, self.endpoints, None if full else changed)
        elapsed = time.perf_counter() - start
        done = time.time()
        self.metrics.sync_duration.observe(elapsed)
        (self.metrics.full_sync_duration if full else self.metrics.partial_sync_duration).observe(elapsed)
        for table, count in result.rules.items():
            self.metrics.rules.labels(table).set(count)
        self.metrics.last_sync.set(done)
        for when in self.endpoint_changes.take_triggers(None if full else changed).values():
            self.metrics.network_programming.observe(max(0.0, done - when))
        self.health.updated()
        log.debug("synced", full=full, changed=len(changed), seconds=round(elapsed, 4), rules=result.rules)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Run until cancelled; rules stay in place when it stops."""
        if self.proxier is None:
            backend = await self.rules_ns.run(
                iptables_backend.detect, self.config.mode, self.config.iptables_backend
            )
            self.proxier = self._make_proxier(backend)
        await self.proxier.start()
        log.info(
            "kube-proxy starting",
            mode=self.proxier.mode,
            backend=getattr(getattr(self.proxier, "backend", None), "name", ""),
            netns=self.config.netns,
        )
        await self.http.start(self.config.healthz_listen, self.config.metrics_listen)
        services = Informer(self.client, "services")
        endpoints = Informer(self.client, "endpoints")
        services.add_handlers(
            on_add=self._service_changed,
            on_update=lambda _old, new: self._service_changed(new),
            on_delete=lambda obj: self._service_changed(obj, deleted=True),
        )
        endpoints.add_handlers(
            on_add=self._endpoints_changed,
            on_update=lambda _old, new: self._endpoints_changed(new),
            on_delete=lambda obj: self._endpoints_changed(obj, deleted=True),
        )
        services.start()
        endpoints.start()
        runner: asyncio.Task[None] | None = None
        try:
            # Syncing before both caches are full would delete rules of services not seen yet.
            await services.wait_synced()
            await endpoints.wait_synced()
            runner = asyncio.create_task(self.runner.run(), name="proxy-sync")
            while self.runner.syncs == 0:
                await asyncio.sleep(0.02)
            self.ready.set()
            await runner
        finally:
            if runner is not None:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
            await services.stop()
            await endpoints.stop()
            await self.http.stop()
            await self.service_health.close()
            await self.proxier.stop()

    def close(self) -> None:
        self.rules_ns.close()
        self.sockets_ns.close()
