"""The scheduler component: informers feed the cache and the queue; one loop pops a pod, runs
the cycle (framework.py), assumes the pod on the chosen node and hands it to the binder;
failures become a FailedScheduling Event, a PodScheduled=False condition and, when
lower-priority pods are in the way, a preemption.

Several schedulers run side by side: each takes only the pods whose spec.schedulerName is its
own, while every scheduler's cache counts every bound pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

import structlog
from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.policy.v1 import policy_pb2
from services.client.client import Client
from services.client.errors import APIStatusError, ConflictError, NotFoundError
from services.client.events import NORMAL, WARNING, EventRecorder
from services.client.informer import Informer, object_key
from services.machinery import disruption, labels
from services.scheduler import metrics, preemption
from services.scheduler.binder import Binder
from services.scheduler.cache import Cache
from services.scheduler.config import SchedulerConfig
from services.scheduler.framework import FitError, Framework
from services.scheduler.podinfo import PodInfo, pod_info, selector_or_nothing
from services.scheduler.queue import QueuedPod, SchedulingQueue, ShutDownError

log = structlog.get_logger("scheduler")
TERMINAL_PHASES = ("Succeeded", "Failed")
HOUSEKEEPING_SECONDS = 1.0


def _terminal(pod: core_pb2.Pod) -> bool:
    return pod.status.phase in TERMINAL_PHASES


class Scheduler:
    def __init__(
        self,
        client: Client,
        config: SchedulerConfig | None = None,
        *,
        rng: random.Random | None = None,
        recorder: EventRecorder | None = None,
    ) -> None:
        self.client = client
        self.config = config or SchedulerConfig()
        self.name = self.config.scheduler_name
        self.cache = Cache()
        self.queue = SchedulingQueue(
            initial_backoff=self.config.initial_backoff_seconds,
            max_backoff=self.config.max_backoff_seconds,
            max_unschedulable=self.config.max_unschedulable_seconds,
        )
        self.rng = rng or random.Random()
        self.framework = Framework(self.config, self.cache, self.rng)
        self.binder = Binder(client, self.config.parallel_binds, self._bound, self._bind_failed)
        self.recorder = recorder or EventRecorder(client, self.name)
        self.in_flight: dict[str, QueuedPod] = {}
        self.informers: dict[str, Informer] = {}
        self.scheduled = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reported = (0, 0, 0, 0)
        self.synced = asyncio.Event()
        # The children the per-pod path touches, looked up once (labels() hashes and locks).
        self._scheduled_attempts = metrics.SCHEDULE_ATTEMPTS.labels("scheduled", self.name)
        self._scheduled_duration = metrics.ATTEMPT_DURATION.labels("scheduled", self.name)
        self._binding_duration = metrics.BINDING_DURATION.labels(self.name)
        self._e2e_latency = metrics.E2E_LATENCY.labels(self.name)

    # ------------------------------------------------------------------ lifecycle

    def _informer(self, resource: str, **handlers: Callable[..., Any]) -> Informer:
        informer = Informer(self.client, resource)
        informer.add_handlers(**handlers)
        self.informers[resource] = informer
        return informer

    async def run(self) -> None:
        """Watch, schedule, until cancelled."""
        self._informer(
            "nodes", on_add=self._node_added, on_update=self._node_updated, on_delete=self._node_deleted
        )
        self._informer("namespaces", on_add=self._namespace, on_update=lambda _, n: self._namespace(n))
        self._informer(
            "persistentvolumes",
            on_add=self._pv,
            on_update=lambda _, n: self._pv(n),
            on_delete=self._pv_deleted,
        )
        self._informer(
            "persistentvolumeclaims",
            on_add=self._pvc,
            on_update=lambda _, n: self._pvc(n),
            on_delete=self._pvc_deleted,
        )
        self._informer(
            "poddisruptionbudgets",
            on_add=self._budget,
            on_update=lambda _, n: self._budget(n),
            on_delete=self._budget_deleted,
        )
        for resource in ("services", "replicationcontrollers", "replicasets", "statefulsets"):
            self._informer(
                resource,
                on_add=self._selector_owner,
                on_update=lambda _, n: self._selector_owner(n),
                on_delete=self._selector_owner_deleted,
            )
        pods = self._informer(
            "pods", on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
        )
        try:
            for informer in self.informers.values():
                if informer is not pods:
                    informer.start()
            for informer in self.informers.values():
                if informer is not pods:
                    await informer.wait_synced()
            # Pods last: by then the nodes, volumes and selectors their handlers consult are known.
            pods.start()
            await pods.wait_synced()
            log.info("scheduler caches synced", scheduler=self.name, nodes=self.cache.node_count())
            self.synced.set()
            housekeeping = asyncio.create_task(self._housekeeping())
            try:
                await self._loop()
            finally:
                housekeeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await housekeeping
        finally:
            self.queue.close()
            await self.binder.close()
            for task in list(self._tasks):
                task.cancel()
            for informer in self.informers.values():
                await informer.stop()
            await self.recorder.close()

    async def informers_synced(self) -> None:
        """Returns once every informer has listed (tests and benchmarks wait for this)."""
        await self.synced.wait()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            self.cache.cleanup_expired()
            self.report_metrics()

    def report_metrics(self) -> None:
        for queue, size in self.queue.sizes().items():
            metrics.PENDING_PODS.labels(queue, self.name).set(size)
        stats = self.framework.stats
        now = (stats.filter_hits, stats.filter_misses, stats.score_hits, stats.score_misses)
        for (cache, result), value, before in zip(
            (("equivalence", "hit"), ("equivalence", "miss"), ("score", "hit"), ("score", "miss")),
            now,
            self._reported,
            strict=True,
        ):
            if value > before:
                metrics.CACHE_LOOKUPS.labels(cache, result, self.name).inc(value - before)
        self._reported = now

    # ------------------------------------------------------------------ informer handlers

    def _responsible(self, pod: core_pb2.Pod) -> bool:
        return pod.spec.scheduler_name == self.name

    def _pod_added(self, pod: core_pb2.Pod) -> None:
        if pod.spec.node_name:
            if not _terminal(pod):
                self.cache.add_pod(pod_info(pod))
                self._move_for_affinity(pod)
        elif (
            self._responsible(pod) and not pod.metadata.HasField("deletion_timestamp") and not _terminal(pod)
        ):
            key = object_key(pod)
            if not self.cache.is_assumed(key) and key not in self.in_flight:
                self.queue.add(pod_info(pod))

    def _pod_updated(self, old: core_pb2.Pod, pod: core_pb2.Pod) -> None:
        key = object_key(pod)
        if pod.spec.node_name:
            self.queue.delete(key)
            if _terminal(pod):
                if self.cache.remove_pod(key) is not None:
                    self.queue.move_all("AssignedPodDelete")
            else:
                if not self.cache.confirm(old, pod):
                    self.cache.add_pod(pod_info(pod))
                if not old.spec.node_name:
                    self._move_for_affinity(pod)
            return
        if self.cache.is_assumed(key) or key in self.in_flight:
            return
        if not self._responsible(pod) or pod.metadata.HasField("deletion_timestamp") or _terminal(pod):
            self.queue.delete(key)
            return
        self.queue.update(pod_info(pod))

    def _pod_deleted(self, pod: core_pb2.Pod) -> None:
        key = object_key(pod)
        self.queue.delete(key)
        self.framework.ecache.forget_pod(pod.metadata.uid)
        if self.cache.remove_pod(key) is not None:
            self.queue.move_all("AssignedPodDelete")

    def _move_for_affinity(self, pod: core_pb2.Pod) -> None:
        """A newly placed pod can satisfy a parked pod's required affinity."""
        if any(q.info.required_affinity for q in self.queue.parked()):
            self.queue.move_all("AssignedPodAdd")

    def _node_added(self, node: core_pb2.Node) -> None:
        self.cache.add_node(node)
        self.queue.move_all("NodeAdd")

    def _node_updated(self, old: core_pb2.Node, node: core_pb2.Node) -> None:
        info = self.cache.nodes.get(node.metadata.name)
        before = info.generation if info is not None else -1
        after = self.cache.add_node(node).generation
        if after != before:
            self.queue.move_all("NodeUpdate")

    def _node_deleted(self, node: core_pb2.Node) -> None:
        self.cache.remove_node(node.metadata.name)
        self.framework.ecache.remove_node(node.metadata.name)

    def _namespace(self, ns: core_pb2.Namespace) -> None:
        self.cache.namespace_labels[ns.metadata.name] = dict(ns.metadata.labels)

    def _pv(self, pv: core_pb2.PersistentVolume) -> None:
        self.cache.pvs[pv.metadata.name] = pv
        self.queue.move_all("PersistentVolume")

    def _pv_deleted(self, pv: core_pb2.PersistentVolume) -> None:
        self.cache.pvs.pop(pv.metadata.name, None)

    def _pvc(self, pvc: core_pb2.PersistentVolumeClaim) -> None:
        key = (pvc.metadata.namespace, pvc.metadata.name)
        old = self.cache.pvcs.get(key)
        self.cache.pvcs[key] = pvc
        if old is None or old.spec.volume_name != pvc.spec.volume_name:
            self.queue.move_all("PersistentVolumeClaim")

    def _pvc_deleted(self, pvc: core_pb2.PersistentVolumeClaim) -> None:
        self.cache.pvcs.pop((pvc.metadata.namespace, pvc.metadata.name), None)

    def _budget(self, budget: policy_pb2.PodDisruptionBudget) -> None:
        self.cache.budgets[object_key(budget)] = (budget, disruption.selector(budget))

    def _budget_deleted(self, budget: policy_pb2.PodDisruptionBudget) -> None:
        self.cache.budgets.pop(object_key(budget), None)

    def _selector_owner(self, obj: Message) -> None:
        selector: labels.Selector
        if isinstance(obj, core_pb2.Service):
            selector = labels.from_set(obj.spec.selector) if obj.spec.selector else labels.NOTHING
            target = self.cache.services
        elif isinstance(obj, core_pb2.ReplicationController):
            selector = labels.from_set(obj.spec.selector) if obj.spec.selector else labels.NOTHING
            target = self.cache.controllers
        elif isinstance(obj, apps_pb2.ReplicaSet | apps_pb2.StatefulSet):
            selector = selector_or_nothing(obj.spec.selector if obj.spec.HasField("selector") else None)
            target = self.cache.controllers
        else:
            return
        key = f"{type(obj).__name__}/{object_key(obj)}"
        if target.get(key) != (obj.metadata.namespace, selector):
            target[key] = (obj.metadata.namespace, selector)
            if isinstance(obj, core_pb2.Service):
                self.queue.move_all("ServiceAdd")

    def _selector_owner_deleted(self, obj: Message) -> None:
        key = f"{type(obj).__name__}/{object_key(obj)}"
        self.cache.services.pop(key, None)
        self.cache.controllers.pop(key, None)

    # ------------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        while True:
            try:
                queued = await self.queue.pop()
            except ShutDownError:
                return
            await self.schedule_one(queued)

    def _current(self, key: str) -> core_pb2.Pod | None:
        informer = self.informers.get("pods")
        pod = informer.store.get(key) if informer is not None else None
        assert pod is None or isinstance(pod, core_pb2.Pod)
        return pod

    async def schedule_one(self, queued: QueuedPod) -> None:
        info = queued.info
        cycle = self.queue.cycle
        current = self._current(info.key)
        if (
            current is None
            or current.metadata.uid != info.uid
            or current.spec.node_name
            or current.metadata.HasField("deletion_timestamp")
        ):
            return
        started = time.perf_counter()
        try:
            result = self.framework.schedule(info)
        except FitError as error:
            elapsed = time.perf_counter() - started
            metrics.SCHEDULE_ATTEMPTS.labels("unschedulable", self.name).inc()
            metrics.ATTEMPT_DURATION.labels("unschedulable", self.name).observe(elapsed)
            self.queue.add_unschedulable(queued, cycle)
            candidate = preemption.find_candidate(self.framework, info, error, self.rng)
            self._spawn(self._unschedulable(info, error, candidate))
            return
        except Exception:
            log.exception("scheduling cycle failed", pod=info.key)
            metrics.SCHEDULE_ATTEMPTS.labels("error", self.name).inc()
            self.queue.add_backoff(queued)
            return
        elapsed = time.perf_counter() - started
        self._scheduled_attempts.inc()
        self._scheduled_duration.observe(elapsed)
        self.cache.assume(info, result.node)
        self.in_flight[info.key] = queued
        await self.binder.bind(info, result.node)

    # ------------------------------------------------------------------ outcomes

    def _bound(self, info: PodInfo, node: str, elapsed: float) -> None:
        queued = self.in_flight.pop(info.key, None)
        self.cache.finish_binding(info.key)
        self.scheduled += 1
        self._binding_duration.observe(elapsed)
        if queued is not None:
            self._e2e_latency.observe(max(time.monotonic() - queued.initial, 0.0))
        self.recorder.event(
            info.pod, NORMAL, "Scheduled", f"Successfully assigned {info.namespace}/{info.name} to {node}"
        )

    def _bind_failed(self, info: PodInfo, node: str, error: APIStatusError) -> None:
        queued = self.in_flight.pop(info.key, None)
        self.cache.forget(info.key)
        log.info("binding failed", pod=info.key, node=node, error=str(error))
        if isinstance(error, NotFoundError) or (isinstance(error, ConflictError) and "already" in str(error)):
            return
        metrics.SCHEDULE_ATTEMPTS.labels("error", self.name).inc()
        self.recorder.event(info.pod, WARNING, "FailedScheduling", f"Binding rejected: {error}")
        if queued is not None and self._current(info.key) is not None:
            self.queue.add_backoff(queued)

    async def _unschedulable(
        self, info: PodInfo, error: FitError, candidate: preemption.Candidate | None
    ) -> None:
        message = error.message()
        self.recorder.event(info.pod, WARNING, "FailedScheduling", message)
        nominated: str | None = None
        if candidate is not None:
            nominated = candidate.node
            self.cache.add_nominated(info, candidate.node)
        await self._set_status(info.key, message, nominated)
        if candidate is not None:
            await self._preempt(info, candidate)

    async def _set_status(self, key: str, message: str, nominated: str | None) -> None:
        """PodScheduled=False/Unschedulable with the summary (and the nominated node)."""
        current = self._current(key)
        if current is None or current.spec.node_name:
            return
        pod = core_pb2.Pod()
        pod.CopyFrom(current)
        condition = next((c for c in pod.status.conditions if c.type == "PodScheduled"), None)
        changed = False
        if condition is None or condition.status != "False" or condition.message != message:
            if condition is None:
                condition = pod.status.conditions.add(type="PodScheduled")
            if condition.status != "False":
                condition.last_transition_time.FromSeconds(int(time.time()))
            condition.status, condition.reason, condition.message = "False", "Unschedulable", message
            changed = True
        if nominated is not None and pod.status.nominated_node_name != nominated:
            pod.status.nominated_node_name = nominated
            changed = True
        if not changed:
            return
        pod.metadata.resource_version = ""
        with contextlib.suppress(APIStatusError):
            await self.client.update_status(pod)

    async def _preempt(self, info: PodInfo, candidate: preemption.Candidate) -> None:
        metrics.PREEMPTION_ATTEMPTS.labels(self.name).inc()
        metrics.PREEMPTION_VICTIMS.labels(self.name).observe(len(candidate.victims))
        log.info(
            "preempting",
            pod=info.key,
            node=candidate.node,
            victims=[v.key for v in candidate.victims],
        )
        for victim in candidate.victims:
            self.recorder.event(
                victim.pod,
                NORMAL,
                "Preempted",
                f"Preempted by {info.namespace}/{info.name} on node {candidate.node}",
            )
            # A plain delete: the victim gets its termination grace period, as in Kubernetes.
            with contextlib.suppress(NotFoundError):
                await self.client.delete("pods", victim.name, victim.namespace, uid=victim.uid)
        # Lower-priority pods nominated to this node lose the nomination: they would not fit.
        for other in list(self.cache.nominated.get(candidate.node, {}).values()):
            if other.priority < info.priority:
                self.cache.remove_nominated(other.key)
                current = self._current(other.key)
                if current is not None and current.status.nominated_node_name:
                    pod = core_pb2.Pod()
                    pod.CopyFrom(current)
                    pod.status.nominated_node_name = ""
                    pod.metadata.resource_version = ""
                    with contextlib.suppress(APIStatusError):
                        await self.client.update_status(pod)
