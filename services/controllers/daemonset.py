"""DaemonSets: one pod on every eligible node.

A node is eligible when it matches the template's nodeSelector and required node affinity and
the pod tolerates its NoSchedule and NoExecute taints; a running pod stays while it tolerates
the NoExecute ones. Like Kubernetes before scheduler-placed daemons, the controller binds the
pod itself (spec.nodeName), so daemons run even where no scheduler does; DaemonSet pods also
tolerate the node-condition taints (not-ready, unreachable, pressure, unschedulable), because
a node's daemons (network, logs) must keep running while it is unhealthy.

Node joins and leaves recompute every DaemonSet (O(daemonsets) per node event, not O(pods));
pods left on deleted nodes are removed. Every template is recorded as a ControllerRevision
(history.py) whose hash labels the pods (controller-revision-hash); RollingUpdate replaces
pods whose label is stale, at most maxUnavailable nodes at a time; OnDelete waits for the user
to delete them. Revisions no pod uses are trimmed to revisionHistoryLimit."""

from __future__ import annotations

import asyncio
import time

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.errors import APIStatusError, NotFoundError
from services.client.events import NORMAL, WARNING
from services.controllers import deployment_util as du
from services.controllers import history
from services.controllers import taints as tt
from services.controllers.base import Controller, ControllerContext, object_key
from services.controllers.expectations import Expectations
from services.controllers.podutil import (
    OWNER_INDEX,
    OWNERSHIP_INDEXERS,
    controller_ref,
    is_active,
    is_available,
    is_ready,
    owned,
    pod_from_template,
)
from services.controllers.replicaset import write_status

REVISION_LABEL = history.REVISION_LABEL
DAEMON_TOLERATIONS = (
    core_pb2.Toleration(key=tt.NOT_READY, operator="Exists", effect=tt.NO_EXECUTE),
    core_pb2.Toleration(key=tt.UNREACHABLE, operator="Exists", effect=tt.NO_EXECUTE),
    core_pb2.Toleration(key="node.kubernetes.io/disk-pressure", operator="Exists", effect=tt.NO_SCHEDULE),
    core_pb2.Toleration(key="node.kubernetes.io/memory-pressure", operator="Exists", effect=tt.NO_SCHEDULE),
    core_pb2.Toleration(key="node.kubernetes.io/pid-pressure", operator="Exists", effect=tt.NO_SCHEDULE),
    core_pb2.Toleration(key=tt.UNSCHEDULABLE, operator="Exists", effect=tt.NO_SCHEDULE),
)


def _requirement_matches(req: core_pb2.NodeSelectorRequirement, value: str | None) -> bool:
    op = req.operator
    if op == "In":
        return value is not None and value in req.values
    if op == "NotIn":
        return value is None or value not in req.values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and req.values:
        try:
            actual, bound = int(value), int(req.values[0])
        except ValueError:
            return False
        return actual > bound if op == "Gt" else actual < bound
    return False


def node_affinity_matches(spec: core_pb2.PodSpec, node: core_pb2.Node) -> bool:
    labels = node.metadata.labels
    if any(labels.get(k) != v for k, v in spec.node_selector.items()):
        return False
    required = spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    if not required.node_selector_terms:
        return True
    for term in required.node_selector_terms:
        fields = {"metadata.name": node.metadata.name}
        if all(_requirement_matches(r, labels.get(r.key)) for r in term.match_expressions) and all(
            _requirement_matches(r, fields.get(r.key)) for r in term.match_fields
        ):
            return True
    return False


def daemon_tolerations(spec: core_pb2.PodSpec) -> list[core_pb2.Toleration]:
    return [*spec.tolerations, *DAEMON_TOLERATIONS]


def placement(ds: apps_pb2.DaemonSet, node: core_pb2.Node) -> tuple[bool, bool]:
    """(should run a new pod here, may keep a running one here)."""
    spec = ds.spec.template.spec
    if not node_affinity_matches(spec, node):
        return False, False
    tolerations = daemon_tolerations(spec)
    keep = not tt.untolerated(tolerations, node.spec.taints, (tt.NO_EXECUTE,))
    run = keep and not tt.untolerated(tolerations, node.spec.taints, (tt.NO_SCHEDULE,))
    return run, keep


class DaemonSetController(Controller):
    name = "daemonset"
    default_workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.daemonsets = self.informer("daemonsets")
        self.nodes = self.informer("nodes")
        self.pods = self.informer("pods", OWNERSHIP_INDEXERS)
        self.revisions = self.informer("controllerrevisions", OWNERSHIP_INDEXERS)
        self.revisions.add_handlers(on_delete=self._pod_event)
        self.daemonsets.add_handlers(
            on_add=self.enqueue_obj, on_update=lambda _o, n: self.enqueue_obj(n), on_delete=self._ds_deleted
        )
        self.nodes.add_handlers(
            on_add=self._node_changed, on_update=self._node_updated, on_delete=self._node_changed
        )
        self.pods.add_handlers(
            on_add=self._pod_added, on_update=lambda _o, n: self._pod_event(n), on_delete=self._pod_deleted
        )

    def _ds_deleted(self, ds: Message) -> None:
        self.expectations.forget(object_key(ds))

    def _node_changed(self, _node: Message) -> None:
        for ds in self.daemonsets.store.list():
            self.enqueue_obj(ds)

    def _node_updated(self, old: Message, new: Message) -> None:
        assert isinstance(old, core_pb2.Node) and isinstance(new, core_pb2.Node)
        if (old.metadata.labels, list(old.spec.taints), old.spec.unschedulable) != (
            new.metadata.labels,
            list(new.spec.taints),
            new.spec.unschedulable,
        ):
            self._node_changed(new)

    def _owner(self, pod: Message) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.kind != "DaemonSet":
            return None
        key = f"{pod.metadata.namespace}/{ref.name}"  # type: ignore[attr-defined]
        ds = self.daemonsets.store.get(key)
        return key if ds is not None and ds.metadata.uid == ref.uid else None  # type: ignore[attr-defined]

    def _pod_added(self, pod: Message) -> None:
        key = self._owner(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)

    def _pod_event(self, pod: Message) -> None:
        key = self._owner(pod)
        if key is not None:
            self.enqueue(key)

    def _pod_deleted(self, pod: Message) -> None:
        key = self._owner(pod)
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))
            self.enqueue(key)

    async def sync(self, key: str) -> None:
        cached = self.daemonsets.store.get(key)
        if not isinstance(cached, apps_pb2.DaemonSet):
            return
        ds = apps_pb2.DaemonSet()
        ds.CopyFrom(cached)
        if ds.metadata.HasField("deletion_timestamp"):
            return
        revisions = history.owned_by(self.revisions.store.by_index(OWNER_INDEX, ds.metadata.uid), ds)
        current, collisions = await history.update_revision(
            self.client, ds, ds.spec.template, revisions, ds.status.collision_count
        )
        if collisions != ds.status.collision_count:
            ds.status.collision_count = collisions
        revision = history.digest_of(current)
        by_node: dict[str, list[core_pb2.Pod]] = {}
        stray: list[core_pb2.Pod] = []
        for pod in owned(self.pods.store, ds):
            ref = controller_ref(pod)
            if not isinstance(pod, core_pb2.Pod) or ref is None or ref.uid != ds.metadata.uid:
                continue
            if pod.metadata.HasField("deletion_timestamp"):
                continue
            if self.nodes.store.get(pod.spec.node_name) is None:
                stray.append(pod)
            else:
                by_node.setdefault(pod.spec.node_name, []).append(pod)
        nodes = [n for n in self.nodes.store.list() if isinstance(n, core_pb2.Node)]
        if self.expectations.satisfied(key):
            error = None
            try:
                await self._manage(key, ds, nodes, by_node, stray, revision)
            except APIStatusError as exc:
                error = exc
            if error is not None:
                await self._status(ds, nodes, by_node, revision)
                raise error
        await self._status(ds, nodes, by_node, revision)
        in_use = {p.metadata.labels.get(REVISION_LABEL, "") for pods in by_node.values() for p in pods}
        await history.trim(
            self.client, revisions, (current.metadata.name,), in_use, ds.spec.revision_history_limit
        )

    async def _manage(
        self,
        key: str,
        ds: apps_pb2.DaemonSet,
        nodes: list[core_pb2.Node],
        by_node: dict[str, list[core_pb2.Pod]],
        stray: list[core_pb2.Pod],
        revision: str,
    ) -> None:
        create: list[str] = []
        delete: list[core_pb2.Pod] = list(stray)
        now = time.time()
        for node in nodes:
            run, keep = placement(ds, node)
            pods = [p for p in by_node.get(node.metadata.name, []) if p.status.phase != "Succeeded"]
            failed = [p for p in pods if p.status.phase == "Failed"]
            delete.extend(failed)
            live = sorted(
                (p for p in pods if is_active(p)), key=lambda p: p.metadata.creation_timestamp.seconds
            )
            if not keep:
                delete.extend(live)
            elif live:
                delete.extend(live[1:])
            elif run and not failed:
                create.append(node.metadata.name)
        if ds.spec.update_strategy.type != "OnDelete" and not create:
            delete.extend(
                self._rolling_victims(ds, nodes, by_node, revision, now, {p.metadata.uid for p in delete})
            )
        if create:
            self.expectations.expect_creations(key, len(create))
            results = await asyncio.gather(
                *(self._create(ds, node, revision) for node in create), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, Exception)]
            for _ in failures:
                self.expectations.creation_observed(key)
            if failures:
                self.recorder.event(ds, WARNING, "FailedCreate", f"Error creating: {failures[0]}")
                raise failures[0]
            self.recorder.event(ds, NORMAL, "SuccessfulCreate", f"Created {len(create)} daemon pod(s)")
        if delete:
            self.expectations.expect_deletions(key, [object_key(p) for p in delete])
            for pod in delete:
                grace = 0 if pod in stray else None
                try:
                    await self.client.delete(
                        "pods",
                        pod.metadata.name,
                        pod.metadata.namespace,
                        uid=pod.metadata.uid,
                        grace_period_seconds=grace,
                    )
                except NotFoundError:
                    self.expectations.deletion_observed(key, object_key(pod))
            self.recorder.event(ds, NORMAL, "SuccessfulDelete", f"Deleted {len(delete)} daemon pod(s)")

    def _rolling_victims(
        self,
        ds: apps_pb2.DaemonSet,
        nodes: list[core_pb2.Node],
        by_node: dict[str, list[core_pb2.Pod]],
        revision: str,
        now: float,
        already: set[str],
    ) -> list[core_pb2.Pod]:
        desired = [n for n in nodes if placement(ds, n)[0]]
        max_unavailable = du.scaled_value(
            ds.spec.update_strategy.rolling_update.max_unavailable, len(desired), True
        )
        max_unavailable = max(max_unavailable, 1)
        unavailable = 0
        old_available: list[core_pb2.Pod] = []
        victims: list[core_pb2.Pod] = []
        for node in desired:
            live = [p for p in by_node.get(node.metadata.name, []) if is_active(p)]
            pod = live[0] if live else None
            available = pod is not None and is_available(pod, ds.spec.min_ready_seconds, now)
            if not available:
                unavailable += 1
            if (
                pod is None
                or pod.metadata.labels.get(REVISION_LABEL) == revision
                or pod.metadata.uid in already
            ):
                continue
            if available:
                old_available.append(pod)
            else:
                victims.append(pod)  # an old pod that is not serving anyway: replace it now
        budget = max_unavailable - unavailable
        victims.extend(old_available[: max(budget, 0)])
        return victims

    async def _create(self, ds: apps_pb2.DaemonSet, node: str, revision: str) -> None:
        pod = pod_from_template(ds.spec.template, ds, extra_labels={REVISION_LABEL: revision})
        pod.spec.node_name = node
        existing = {(t.key, t.effect) for t in pod.spec.tolerations}
        for toleration in DAEMON_TOLERATIONS:
            if (toleration.key, toleration.effect) not in existing:
                pod.spec.tolerations.append(toleration)
        await self.client.create(pod)

    async def _status(
        self,
        ds: apps_pb2.DaemonSet,
        nodes: list[core_pb2.Node],
        by_node: dict[str, list[core_pb2.Pod]],
        revision: str,
    ) -> None:
        now = time.time()
        status = apps_pb2.DaemonSetStatus()
        status.CopyFrom(ds.status)
        desired = scheduled = misscheduled = ready = updated = available = 0
        for node in nodes:
            run, _keep = placement(ds, node)
            live = [p for p in by_node.get(node.metadata.name, []) if is_active(p)]
            if run:
                desired += 1
                if live:
                    scheduled += 1
            elif live:
                misscheduled += 1
            if live and run:
                pod = live[0]
                ready += is_ready(pod)
                available += is_available(pod, ds.spec.min_ready_seconds, now)
                updated += pod.metadata.labels.get(REVISION_LABEL) == revision
        status.desired_number_scheduled = desired
        status.current_number_scheduled = scheduled
        status.number_misscheduled = misscheduled
        status.number_ready = ready
        status.updated_number_scheduled = updated
        status.number_available = available
        status.number_unavailable = max(desired - available, 0)
        status.observed_generation = ds.metadata.generation
        if status != ds.status:
            try:
                await write_status(self, ds, status)
            except NotFoundError:
                return
        if ds.spec.min_ready_seconds and ready > available:
            self.enqueue_after(object_key(ds), ds.spec.min_ready_seconds)
