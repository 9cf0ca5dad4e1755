"""Node lifecycle: notice nodes that stopped heartbeating, taint them, and evict their pods.

- Heartbeats are the node's Lease renewals and its status updates. The controller records
  when it last *observed* one on its own clock (skew between machines does not matter); a
  node silent for `node_monitor_grace_period` (40 s by default) gets every condition set to
  Unknown ("Kubelet stopped posting node status.") and its pods marked not ready, so
  Endpoints drop them at once. Silence is counted only while the controller's own watches
  run: after an apiserver outage every node gets a whole grace period again.
- A node whose Ready condition is False or Unknown gets the not-ready / unreachable
  NoExecute taint; a Ready node loses them.
- Taints are added at a limited rate per zone (0.1 nodes/s by default), and not at all when
  most nodes of a zone are down or every zone is fully down: that looks like a network
  partition rather than dead machines (Borg's lesson), and evicting everything would turn a
  partition into an outage.
- Pods bound to a node that no longer exists are force-deleted (grace 0: no kubelet is left
  to confirm), as Kubernetes' pod garbage collector does, so their controllers replace them.
- The taint manager evicts (deletes) a pod on a NoExecute-tainted node once its toleration
  runs out: at once without a toleration, after tolerationSeconds (300 s from the
  DefaultTolerationSeconds admission plugin) otherwise, counted from the taint's timeAdded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from google.protobuf.message import Message

from pinnace.api.coordination.v1 import coordination_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.errors import ConflictError, NotFoundError
from services.client.events import NORMAL
from services.controllers import taints as tt
from services.controllers.base import Controller, ControllerContext
from services.controllers.podutil import is_terminal, now_ts, seconds

LEASE_NAMESPACE = "kube-node-lease"
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
NODE_INDEX = "node"

NORMAL_ZONE = "Normal"
PARTIAL_DISRUPTION = "PartialDisruption"
FULL_DISRUPTION = "FullDisruption"


def zone_of(node: core_pb2.Node) -> str:
    for label in ZONE_LABELS:
        if label in node.metadata.labels:
            return node.metadata.labels[label]
    return ""


def ready_status(node: core_pb2.Node) -> str:
    for condition in node.status.conditions:
        if condition.type == "Ready":
            return condition.status
    return "Unknown"


def _pod_node(pod: Message) -> list[str]:
    name = pod.spec.node_name  # type: ignore[attr-defined]
    return [name] if name else []


@dataclass
class TokenBucket:
    """A bucket of one token refilled at `rate` per second (flowcontrol's rate limiter)."""

    rate: float
    tokens: float = 1.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        if self.rate > 0:
            self.tokens = min(1.0, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.rate > 0 and self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self) -> float:
        return (1.0 - self.tokens) / self.rate if self.rate > 0 else 1.0


def zone_state(total: int, not_ready: int, threshold: float) -> str:
    if total and not_ready == total:
        return FULL_DISRUPTION
    if not_ready > 2 and not_ready / total >= threshold:
        return PARTIAL_DISRUPTION
    return NORMAL_ZONE


class NodeLifecycleController(Controller):
    name = "nodelifecycle"
    default_workers = 4

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.nodes = self.informer("nodes")
        self.leases = self.informer("leases")
        self.pods = self.informer("pods", {NODE_INDEX: _pod_node})
        self.observed: dict[str, float] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.zone_states: dict[str, str] = {}
        self.evictions = 0
        self.all_zones_down = False
        self.nodes.add_handlers(
            on_add=self._node_added, on_update=self._node_updated, on_delete=self._node_deleted
        )
        self.leases.add_handlers(on_add=self._lease_seen, on_update=self._lease_updated)
        self.pods.add_handlers(on_add=self._pod_changed, on_update=lambda _o, n: self._pod_changed(n))

    # ------------------------------------------------------------------ observations

    def _node_added(self, node: Message) -> None:
        self.observed[node.metadata.name] = time.monotonic()  # type: ignore[attr-defined]
        self.enqueue(("node", node.metadata.name))  # type: ignore[attr-defined]

    def _node_updated(self, old: Message, new: Message) -> None:
        assert isinstance(old, core_pb2.Node) and isinstance(new, core_pb2.Node)
        if _heartbeat(old) != _heartbeat(new):
            self.observed[new.metadata.name] = time.monotonic()
        self.enqueue(("node", new.metadata.name))
        if list(old.spec.taints) != list(new.spec.taints):
            for pod in self.pods.store.by_index(NODE_INDEX, new.metadata.name):
                self.enqueue(("pod", f"{pod.metadata.namespace}/{pod.metadata.name}"))  # type: ignore[attr-defined]

    def _node_deleted(self, node: Message) -> None:
        self.observed.pop(node.metadata.name, None)  # type: ignore[attr-defined]
        self.enqueue(("gone", node.metadata.name))  # type: ignore[attr-defined]

    def _lease_seen(self, lease: Message) -> None:
        if lease.metadata.namespace == LEASE_NAMESPACE:  # type: ignore[attr-defined]
            self.observed[lease.metadata.name] = time.monotonic()  # type: ignore[attr-defined]

    def _lease_updated(self, old: Message, new: Message) -> None:
        assert isinstance(old, coordination_pb2.Lease) and isinstance(new, coordination_pb2.Lease)
        if new.metadata.namespace == LEASE_NAMESPACE and old.spec.renew_time != new.spec.renew_time:
            self.observed[new.metadata.name] = time.monotonic()

    def _pod_changed(self, pod: Message) -> None:
        assert isinstance(pod, core_pb2.Pod)
        node = self.nodes.store.get(pod.spec.node_name) if pod.spec.node_name else None
        if isinstance(node, core_pb2.Node) and any(t.effect == tt.NO_EXECUTE for t in node.spec.taints):
            self.enqueue(("pod", f"{pod.metadata.namespace}/{pod.metadata.name}"))

    # ------------------------------------------------------------------ monitor

    async def background(self) -> None:
        await self.nodes.wait_synced()
        while True:
            await asyncio.sleep(self.settings.node_monitor_period)
            try:
                await self.monitor()
            except Exception as exc:
                self.log.warning("node monitor pass failed", error=str(exc))

    async def monitor(self) -> None:
        """One pass: mark silent nodes Unknown, recompute zone states from the result, then
        queue taint additions (only here, so a zone's state reflects the whole pass)."""
        now = time.monotonic()
        listening = self._listening_since()
        marked: set[str] = set()
        for node in self.nodes.store.list():
            assert isinstance(node, core_pb2.Node)
            name = node.metadata.name
            last_heard = self.observed.setdefault(name, now)
            ever_ready = any(c.type == "Ready" for c in node.status.conditions)
            grace = (
                self.settings.node_monitor_grace_period
                if ever_ready
                else self.settings.node_startup_grace_period
            )
            silent = (
                listening is not None
                and now - max(last_heard, listening) > grace
                and ready_status(node) != "Unknown"
            )
            if silent and await self._mark_unknown(node):
                marked.add(name)
        self._compute_zones(marked)
        for name in list(self.pods.store.indexes[NODE_INDEX]):
            if self.nodes.store.get(name) is None:
                self.enqueue(("gone", name))
        for node in self.nodes.store.list():
            assert isinstance(node, core_pb2.Node)
            if node.metadata.name in marked or ready_status(node) != "True":
                self.enqueue(("taint", node.metadata.name))

    def _listening_since(self) -> float | None:
        """Since when both the nodes and the leases watch have run unbroken; None while either is
        down. A node's silence counts only from here: after an apiserver outage (or a broken
        watch) every node gets a whole grace period again, as each does when a restarted
        kube-controller-manager first sees it, instead of being marked Unknown for heartbeats
        this controller could not have heard."""
        nodes, leases = self.nodes.watching_since, self.leases.watching_since
        return None if nodes is None or leases is None else max(nodes, leases)

    async def _mark_unknown(self, cached: core_pb2.Node) -> bool:
        node = core_pb2.Node()
        node.CopyFrom(cached)
        stamp = now_ts()
        types = [c.type for c in node.status.conditions]
        if "Ready" not in types:
            node.status.conditions.add(type="Ready")
        for condition in node.status.conditions:
            if condition.status != "Unknown":
                condition.last_transition_time.CopyFrom(stamp)
            condition.status = "Unknown"
            condition.reason = "NodeStatusUnknown"
            condition.message = "Kubelet stopped posting node status."
        try:
            await self.client.update_status(node)
        except (ConflictError, NotFoundError):
            return False
        self.recorder.event(
            node, NORMAL, "NodeNotReady", f"Node {node.metadata.name} status is now: NodeNotReady"
        )
        await self._mark_pods_not_ready(node.metadata.name)
        return True

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        for cached in self.pods.store.by_index(NODE_INDEX, node_name):
            assert isinstance(cached, core_pb2.Pod)
            if is_terminal(cached):
                continue
            pod = core_pb2.Pod()
            pod.CopyFrom(cached)
            changed = False
            for condition in pod.status.conditions:
                if condition.type == "Ready" and condition.status != "False":
                    condition.status = "False"
                    condition.last_transition_time.CopyFrom(now_ts())
                    changed = True
            if changed:
                try:
                    await self.client.update_status(pod)
                except (ConflictError, NotFoundError):
                    continue

    def _compute_zones(self, marked: set[str]) -> None:
        totals: dict[str, list[int]] = {}
        for node in self.nodes.store.list():
            assert isinstance(node, core_pb2.Node)
            counts = totals.setdefault(zone_of(node), [0, 0])
            counts[0] += 1
            if node.metadata.name in marked or ready_status(node) != "True":
                counts[1] += 1
        states = {
            zone: zone_state(total, down, self.settings.unhealthy_zone_threshold)
            for zone, (total, down) in totals.items()
        }
        all_down = bool(states) and all(s == FULL_DISRUPTION for s in states.values())
        size = len(self.nodes.store.items)
        for zone, state in states.items():
            if all_down:
                rate = 0.0
            elif state == PARTIAL_DISRUPTION:
                rate = (
                    self.settings.secondary_eviction_rate
                    if size > self.settings.large_cluster_threshold
                    else 0.0
                )
            else:
                rate = self.settings.eviction_rate
            bucket = self.buckets.setdefault(zone, TokenBucket(rate))
            bucket.rate = rate
            if self.zone_states.get(zone) != state:
                self.log.info("zone state changed", zone=zone or "<default>", state=state)
            self.zone_states[zone] = state
        self.all_zones_down = all_down

    # ------------------------------------------------------------------ sync

    async def sync(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        kind, name = key
        if kind == "node":
            await self._remove_taints_if_ready(name)
        elif kind == "taint":
            await self._add_taint(name)
        elif kind == "gone":
            await self._delete_orphaned_pods(name)
        else:
            await self._sync_pod(name)

    async def _remove_taints_if_ready(self, name: str) -> None:
        cached = self.nodes.store.get(name)
        if not isinstance(cached, core_pb2.Node):
            return
        ours = [
            t
            for t in cached.spec.taints
            if t.key in (tt.NOT_READY, tt.UNREACHABLE) and t.effect == tt.NO_EXECUTE
        ]
        if ours and (ready_status(cached) == "True" or self.all_zones_down):
            await self._set_taints(cached, None)

    async def _add_taint(self, name: str) -> None:
        cached = self.nodes.store.get(name)
        if not isinstance(cached, core_pb2.Node):
            return
        wanted_key = {"False": tt.NOT_READY, "Unknown": tt.UNREACHABLE}.get(ready_status(cached))
        if wanted_key is None or self.all_zones_down:
            await self._remove_taints_if_ready(name)
            return
        current = [
            t.key
            for t in cached.spec.taints
            if t.key in (tt.NOT_READY, tt.UNREACHABLE) and t.effect == tt.NO_EXECUTE
        ]
        if current == [wanted_key]:
            return
        bucket = self.buckets.setdefault(zone_of(cached), TokenBucket(self.settings.eviction_rate))
        if not bucket.take():
            return  # the next monitor pass asks again
        await self._set_taints(cached, wanted_key)

    async def _set_taints(self, cached: core_pb2.Node, key: str | None) -> None:
        node = core_pb2.Node()
        node.CopyFrom(cached)
        kept = [
            t
            for t in node.spec.taints
            if not (t.key in (tt.NOT_READY, tt.UNREACHABLE) and t.effect == tt.NO_EXECUTE)
        ]
        del node.spec.taints[:]
        node.spec.taints.extend(kept)
        if key is not None:
            taint = node.spec.taints.add(key=key, effect=tt.NO_EXECUTE)
            taint.time_added.CopyFrom(now_ts())
        try:
            await self.client.update(node)
        except NotFoundError:
            return

    async def _delete_orphaned_pods(self, node_name: str) -> None:
        if self.nodes.store.get(node_name) is not None:
            return
        for pod in self.pods.store.by_index(NODE_INDEX, node_name):
            meta = pod.metadata  # type: ignore[attr-defined]
            try:
                await self.client.delete(
                    "pods", meta.name, meta.namespace, grace_period_seconds=0, uid=meta.uid
                )
            except (NotFoundError, ConflictError):
                continue
            self.log.info(
                "deleted pod of a deleted node", pod=f"{meta.namespace}/{meta.name}", node=node_name
            )

    async def _sync_pod(self, key: str) -> None:
        cached = self.pods.store.get(key)
        if not isinstance(cached, core_pb2.Pod) or cached.metadata.HasField("deletion_timestamp"):
            return
        node = self.nodes.store.get(cached.spec.node_name)
        if not isinstance(node, core_pb2.Node):
            return
        deadline: float | None = None
        for taint in node.spec.taints:
            if taint.effect != tt.NO_EXECUTE:
                continue
            allowed = tt.toleration_seconds(cached.spec.tolerations, taint)
            if (
                allowed == 0.0
                and taint.key in (tt.NOT_READY, tt.UNREACHABLE)
                and not any(tt.tolerates(t, taint) for t in cached.spec.tolerations)
            ):
                allowed = self.settings.pod_eviction_timeout
            if allowed is None:
                continue
            added = seconds(taint.time_added) if taint.HasField("time_added") else time.time()
            at = added + allowed
            deadline = at if deadline is None else min(deadline, at)
        if deadline is None:
            return
        wait = deadline - time.time()
        if wait > 0:
            self.enqueue_after(("pod", key), wait + 0.01)
            return
        try:
            await self.client.delete(
                "pods", cached.metadata.name, cached.metadata.namespace, uid=cached.metadata.uid
            )
        except (NotFoundError, ConflictError):
            return
        self.evictions += 1
        self.recorder.event(cached, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {key}")


def _heartbeat(node: core_pb2.Node) -> tuple[int, int]:
    for condition in node.status.conditions:
        if condition.type == "Ready":
            return (condition.last_heartbeat_time.seconds, condition.last_heartbeat_time.nanos)
    return (0, 0)
