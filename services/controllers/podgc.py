"""The pod garbage collector (Kubernetes' PodGCController), every `podgc_period` (20 s):

- terminated pods (Succeeded or Failed) beyond `--terminated-pod-gc-threshold` (12,500; 0
  disables) are deleted, oldest first, so finished Job and bare pods do not pile up;
- pods bound to a node that does not exist are orphans: once the node has been missing from
  the cache for `podgc_quarantine` (40 s, so a node that is being re-registered is not
  mistaken for gone) and a live GET confirms it, each is marked Failed with the
  DisruptionTarget condition (reason DeletionByPodGC) and force-deleted (no kubelet is left to
  confirm a graceful delete); this also catches nodes deleted while no controller-manager ran,
  which the node lifecycle controller's delete event cannot see;
- unscheduled pods that are terminating are force-deleted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from pinnace.api.core.v1 import core_pb2
from services.client.errors import ConflictError, NotFoundError
from services.controllers.base import Controller, ControllerContext
from services.controllers.podutil import is_terminal, now_ts, seconds

GC_KEY = "gc"
DISRUPTION_TARGET = "DisruptionTarget"
DELETION_BY_POD_GC = "DeletionByPodGC"


def terminated_to_delete(pods: Iterable[core_pb2.Pod], threshold: int) -> list[core_pb2.Pod]:
    """The oldest terminated pods beyond the threshold (none when it is 0); pods already
    being deleted are not counted twice."""
    if threshold <= 0:
        return []
    done = [p for p in pods if is_terminal(p) and not p.metadata.HasField("deletion_timestamp")]
    excess = len(done) - threshold
    if excess <= 0:
        return []
    done.sort(key=lambda p: (seconds(p.metadata.creation_timestamp), p.metadata.namespace, p.metadata.name))
    return done[:excess]


def unscheduled_terminating(pods: Iterable[core_pb2.Pod]) -> list[core_pb2.Pod]:
    return [p for p in pods if not p.spec.node_name and p.metadata.HasField("deletion_timestamp")]


class PodGarbageCollector(Controller):
    name = "podgc"
    default_workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.pods = self.informer("pods")
        self.nodes = self.informer("nodes")
        # node name -> when the collector first saw pods bound to it while it was missing
        self.missing_since: dict[str, float] = {}
        self.deleted = 0

    async def background(self) -> None:
        while True:
            self.enqueue(GC_KEY)
            await asyncio.sleep(self.settings.podgc_period)

    async def sync(self, key: str) -> None:
        pods = [p for p in self.pods.store.list() if isinstance(p, core_pb2.Pod)]
        for pod in terminated_to_delete(pods, self.settings.terminated_pod_gc_threshold):
            await self._force_delete(pod, "terminated pod over the threshold")
        await self._orphans(pods)
        for pod in unscheduled_terminating(pods):
            await self._force_delete(pod, "unscheduled terminating pod")

    async def _orphans(self, pods: list[core_pb2.Pod]) -> None:
        now = time.monotonic()
        by_node: dict[str, list[core_pb2.Pod]] = {}
        for pod in pods:
            if pod.spec.node_name and self.nodes.store.get(pod.spec.node_name) is None:
                by_node.setdefault(pod.spec.node_name, []).append(pod)
        for node in list(self.missing_since):
            if node not in by_node:
                del self.missing_since[node]
        for node, stranded in by_node.items():
            since = self.missing_since.setdefault(node, now)
            if now - since < self.settings.podgc_quarantine:
                self.enqueue_after(GC_KEY, self.settings.podgc_quarantine - (now - since) + 0.05)
                continue
            try:
                await self.client.get("nodes", node)
                continue  # the cache is behind: the node exists
            except NotFoundError:
                pass
            for pod in stranded:
                await self._mark_failed(pod)
                await self._force_delete(pod, f"orphaned pod of deleted node {node}")

    async def _mark_failed(self, pod: core_pb2.Pod) -> None:
        """markFailedAndDeletePodWithCondition: watchers (a Job counting failures) see why."""
        if is_terminal(pod):
            return
        marked = core_pb2.Pod()
        marked.CopyFrom(pod)
        marked.status.phase = "Failed"
        kept = [c for c in marked.status.conditions if c.type != DISRUPTION_TARGET]
        del marked.status.conditions[:]
        marked.status.conditions.extend(kept)
        marked.status.conditions.add(
            type=DISRUPTION_TARGET,
            status="True",
            reason=DELETION_BY_POD_GC,
            message="PodGC: node no longer exists",
            last_transition_time=now_ts(),
        )
        try:
            await self.client.update_status(marked)
        except (NotFoundError, ConflictError):
            return

    async def _force_delete(self, pod: core_pb2.Pod, why: str) -> None:
        meta = pod.metadata
        try:
            await self.client.delete("pods", meta.name, meta.namespace, grace_period_seconds=0, uid=meta.uid)
        except (NotFoundError, ConflictError):
            return
        self.deleted += 1
        self.log.info("garbage-collected pod", pod=f"{meta.namespace}/{meta.name}", reason=why)
