"""What every controller shares: informers shared across controllers (one list+watch per
resource however many controllers read it), a rate-limited work queue drained by a few
workers, and the context (client, event recorder, settings) a controller is built with."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import structlog
from google.protobuf.message import Message

from services.client.client import Client, Resource, kind_info
from services.client.events import EventRecorder
from services.client.informer import IndexFunc, Informer
from services.client.workqueue import RateLimiter, WorkQueue, run_workers
from services.controllers import metrics

log = structlog.get_logger("controllers")

# After this many failed attempts a key is dropped from the queue (until its next event or
# resync), as client-go controllers do, so one poisoned object cannot spin forever.
MAX_RETRIES = 15


class InformerFactory:
    """One informer per resource, shared by every controller that asks for it."""

    def __init__(self, client: Client, resync_seconds: float = 0.0) -> None:
        self.client = client
        self.resync_seconds = resync_seconds
        self.informers: dict[str, Informer] = {}
        self.started = False
        self._running: set[str] = set()

    def informer(self, resource: Resource, indexers: dict[str, IndexFunc] | None = None) -> Informer:
        info = kind_info(resource)
        informer = self.informers.get(info.plural)
        if informer is None:
            informer = Informer(self.client, info, resync_seconds=self.resync_seconds)
            self.informers[info.plural] = informer
        for name, func in (indexers or {}).items():
            if name not in informer.store.indexers:
                if self.started:
                    raise RuntimeError(f"indexer {name!r} added to {info.plural} after start")
                informer.store.indexers[name] = func
                informer.store.indexes[name] = {}
        return informer

    def start(self) -> None:
        self.started = True
        for plural, informer in self.informers.items():
            if plural not in self._running:
                self._running.add(plural)
                informer.start()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.gather(*(i.wait_synced(timeout) for i in self.informers.values()))

    async def stop(self) -> None:
        for informer in self.informers.values():
            await informer.stop()


@dataclass
class Settings:
    """Every timing and size a controller uses, so tests can run the same logic in seconds."""

    workers: dict[str, int] = field(default_factory=dict)
    # Node lifecycle
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 40.0
    node_startup_grace_period: float = 60.0
    eviction_rate: float = 0.1
    secondary_eviction_rate: float = 0.01
    unhealthy_zone_threshold: float = 0.55
    large_cluster_threshold: int = 50
    # Toleration assumed for the not-ready/unreachable taints when a pod has none (what the
    # DefaultTolerationSeconds admission plugin would have added).
    pod_eviction_timeout: float = 300.0
    # Node IPAM
    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask_size: int = 24
    # Workloads
    burst_replicas: int = 500
    job_backoff_seconds: float = 10.0
    job_backoff_max_seconds: float = 360.0
    # Namespace
    namespace_retry_seconds: float = 1.0
    # HPA
    hpa_sync_period: float = 15.0
    hpa_downscale_stabilization: float = 300.0
    hpa_tolerance: float = 0.1
    # CronJob
    cronjob_sync_period: float = 10.0
    # Pod garbage collector: terminated pods kept (0: no limit), pass period, and how long a
    # node must be missing before its pods count as orphans.
    terminated_pod_gc_threshold: int = 12500
    podgc_period: float = 20.0
    podgc_quarantine: float = 40.0
    # Certificates: the CA that signs approved kube-apiserver-client(-kubelet) requests.
    cluster_signing_cert_file: str = ""
    cluster_signing_key_file: str = ""
    cluster_signing_duration: float = 365 * 24 * 3600.0
    # The CA bundle published as kube-root-ca.crt in every namespace (--root-ca-file, else the
    # CA of the controller-manager's own client configuration).
    root_ca: bytes = b""

    def workers_for(self, name: str, default: int = 2) -> int:
        return self.workers.get(name, default)


@dataclass
class ControllerContext:
    client: Client
    informers: InformerFactory
    recorder: EventRecorder
    settings: Settings = field(default_factory=Settings)


class Controller:
    """A queue of keys and a `sync(key)` that converges one object.

    Subclasses register informer handlers in __init__ that call `enqueue`; `sync` raising
    requeues the key with exponential back-off (a conflict simply retries on fresher data).
    """

    name = "controller"
    default_workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.settings = ctx.settings
        self.queue = WorkQueue(RateLimiter(base=0.005, cap=60.0))
        self.log = log.bind(controller=self.name)
        self.syncs = 0
        self.sync_seconds = 0.0

    def informer(self, resource: Resource, indexers: dict[str, IndexFunc] | None = None) -> Informer:
        return self.ctx.informers.informer(resource, indexers)

    def enqueue(self, key: Hashable) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: Hashable, delay: float) -> None:
        self.queue.add_after(key, delay)

    def enqueue_obj(self, obj: Message | None) -> None:
        if obj is not None:
            self.enqueue(object_key(obj))

    async def sync(self, key: Any) -> None:
        raise NotImplementedError

    async def _handle(self, key: Hashable) -> None:
        started = time.perf_counter()
        metrics.QUEUE_DEPTH.labels(self.name).set(len(self.queue))
        try:
            await self.sync(key)
            metrics.SYNCS.labels(self.name, "success").inc()
        except Exception as exc:
            metrics.SYNCS.labels(self.name, "error").inc()
            retries = self.queue.retries(key)
            if retries >= MAX_RETRIES:
                self.log.warning("dropping key after retries", key=str(key), error=str(exc))
                self.queue.forget(key)
                return
            self.log.info("sync failed, retrying", key=str(key), error=str(exc), retries=retries)
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.syncs += 1
            self.sync_seconds += elapsed
            metrics.SYNC_LATENCY.labels(self.name).observe(elapsed)

    async def background(self) -> None:
        """Periodic work besides the queue (node monitor, cron ticks); none by default."""

    async def run(self, workers: int | None = None) -> None:
        count = workers or self.settings.workers_for(self.name, self.default_workers)
        extra = asyncio.create_task(self.background(), name=f"{self.name}-background")
        try:
            await run_workers(self.queue, count, self._handle)
        finally:
            extra.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await extra

    async def shutdown(self) -> None:
        await self.queue.shutdown()


def object_key(obj: Message) -> str:
    meta = obj.metadata  # type: ignore[attr-defined]
    return f"{meta.namespace}/{meta.name}" if meta.namespace else str(meta.name)


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.rpartition("/")
    return namespace, name
