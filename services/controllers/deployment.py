"""Deployments: one ReplicaSet per pod template (named and labelled with the template's
pod-template-hash), rolled forward with RollingUpdate (maxSurge, maxUnavailable) or Recreate.

- Revisions live on the ReplicaSets (deployment.kubernetes.io/revision); a template that
  matches an old ReplicaSet brings that ReplicaSet back with a new revision, which is what
  a rollback does. Rollback to a revision: the `deployment.kubernetes.io/rollback-to`
  annotation (apps/v1 has no rollbackTo field; `rollback()` sets it).
- Scaling during a rollout spreads the change over the active ReplicaSets in proportion to
  their sizes; a paused Deployment only scales.
- Status: replicas/updated/ready/available/unavailable, Available and Progressing conditions
  (progressDeadlineSeconds turns a stuck rollout into ProgressDeadlineExceeded).
- Old ReplicaSets scaled to zero beyond revisionHistoryLimit are deleted.

No expectations are needed here: ReplicaSet names are deterministic (a second create answers
AlreadyExists) and every scale is an update at the cached resourceVersion, so a stale cache
costs a conflict and a retry, never an extra pod."""

from __future__ import annotations

import time

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.errors import AlreadyExistsError, ConflictError, NotFoundError
from services.client.events import NORMAL, WARNING
from services.controllers import deployment_util as du
from services.controllers.base import Controller, ControllerContext, object_key
from services.controllers.podutil import (
    OWNERSHIP_INDEXERS,
    claim_candidates,
    controller_ref,
    is_terminal,
    now_ts,
    owned,
    owner_reference,
    seconds,
)
from services.controllers.replicaset import claim_pods, selector_of
from services.machinery import labels


class DeploymentController(Controller):
    name = "deployment"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.deployments = self.informer("deployments")
        self.replicasets = self.informer("replicasets", OWNERSHIP_INDEXERS)
        self.pods = self.informer("pods", OWNERSHIP_INDEXERS)
        self.deployments.add_handlers(
            on_add=self.enqueue_obj, on_update=lambda _o, n: self.enqueue_obj(n), on_delete=self.enqueue_obj
        )
        self.replicasets.add_handlers(
            on_add=self._rs_changed, on_update=lambda _o, n: self._rs_changed(n), on_delete=self._rs_changed
        )
        self.pods.add_handlers(on_delete=self._pod_deleted)

    # ------------------------------------------------------------------ events

    def _owner_of(self, rs: Message) -> str | None:
        ref = controller_ref(rs)
        if ref is None or ref.kind != "Deployment":
            return None
        return f"{rs.metadata.namespace}/{ref.name}"  # type: ignore[attr-defined]

    def _rs_changed(self, rs: Message) -> None:
        key = self._owner_of(rs)
        if key is not None:
            self.enqueue(key)
            return
        for d in self.deployments.store.by_index("namespace", rs.metadata.namespace):  # type: ignore[attr-defined]
            try:
                if selector_of(d).matches(rs.metadata.labels):  # type: ignore[attr-defined]
                    self.enqueue(object_key(d))
            except labels.SelectorError:
                continue

    def _pod_deleted(self, pod: Message) -> None:
        """Recreate waits for the old pods to be gone; their deletion is the signal."""
        ref = controller_ref(pod)
        if ref is None or ref.kind != "ReplicaSet":
            return
        rs = self.replicasets.store.get(f"{pod.metadata.namespace}/{ref.name}")  # type: ignore[attr-defined]
        if rs is not None:
            key = self._owner_of(rs)
            d = self.deployments.store.get(key) if key else None
            if key and d is not None and d.spec.strategy.type == "Recreate":  # type: ignore[attr-defined]
                self.enqueue(key)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        cached = self.deployments.store.get(key)
        if not isinstance(cached, apps_pb2.Deployment):
            return
        d = apps_pb2.Deployment()
        d.CopyFrom(cached)
        selector = selector_of(d)
        if selector.is_empty():
            self.recorder.event(d, WARNING, "SelectingAll", "This deployment is selecting all pods.")
            return
        candidates = [
            rs for rs in claim_candidates(self.replicasets.store, d) if isinstance(rs, apps_pb2.ReplicaSet)
        ]
        sets = await claim_pods(self, d, selector, candidates)
        if d.metadata.HasField("deletion_timestamp"):
            new, old = self._split(d, sets)
            await self.sync_status(d, new, old)
            return
        if du.ROLLBACK_TO in d.metadata.annotations:
            await self._rollback(d, sets)
            return
        new, old = self._split(d, sets)
        if d.spec.paused or self._scaling_event(d, new, old):
            await self._sync_scale(d, sets)
            return
        if d.spec.strategy.type == "Recreate":
            await self._rollout_recreate(d, sets)
        else:
            await self._rollout_rolling(d, sets)

    def _split(
        self, d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet]
    ) -> tuple[apps_pb2.ReplicaSet | None, list[apps_pb2.ReplicaSet]]:
        ordered = sorted(sets, key=lambda rs: (seconds(rs.metadata.creation_timestamp), rs.metadata.name))
        new = next((rs for rs in ordered if du.equal_ignore_hash(rs.spec.template, d.spec.template)), None)
        old = [rs for rs in ordered if rs is not new]
        return new, old

    def _scaling_event(
        self, d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet | None, old: list[apps_pb2.ReplicaSet]
    ) -> bool:
        for rs in [*old, *([new] if new else [])]:
            if rs.spec.replicas == 0:
                continue
            desired = du.annotated_int(rs, du.DESIRED_REPLICAS)
            if desired is not None and desired != d.spec.replicas:
                return True
        return False

    # ------------------------------------------------------------------ replica sets

    async def _new_rs(
        self, d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet], create: bool
    ) -> tuple[apps_pb2.ReplicaSet | None, list[apps_pb2.ReplicaSet], bool]:
        """The new ReplicaSet (created if asked), the old ones, and whether it was created;
        revisions are synced on the way (getAllReplicaSetsAndSyncRevision)."""
        new, old = self._split(d, sets)
        revision = max((du.revision_of(rs) for rs in old), default=0) + 1
        created = False
        surge, _ = du.surge_and_unavailable(d)
        if new is not None:
            current = du.revision_of(new)
            wanted = {du.REVISION: str(revision if current < revision else current)}
            if (
                any(new.metadata.annotations.get(k) != v for k, v in wanted.items())
                or new.spec.min_ready_seconds != d.spec.min_ready_seconds
            ):
                updated = apps_pb2.ReplicaSet()
                updated.CopyFrom(new)
                updated.metadata.annotations.update(wanted)
                updated.spec.min_ready_seconds = d.spec.min_ready_seconds
                new = await self.client.update(updated)
        elif create:
            collision = d.status.collision_count if d.status.HasField("collision_count") else 0
            pod_hash = du.template_hash(d.spec.template, collision)
            rs = apps_pb2.ReplicaSet()
            rs.metadata.name = f"{d.metadata.name}-{pod_hash}"
            rs.metadata.namespace = d.metadata.namespace
            rs.metadata.labels.update(d.spec.template.metadata.labels)
            rs.metadata.labels[du.HASH_LABEL] = pod_hash
            rs.metadata.owner_references.append(owner_reference(d))
            rs.spec.selector.CopyFrom(d.spec.selector)
            rs.spec.selector.match_labels[du.HASH_LABEL] = pod_hash
            rs.spec.template.CopyFrom(d.spec.template)
            rs.spec.template.metadata.labels[du.HASH_LABEL] = pod_hash
            rs.spec.min_ready_seconds = d.spec.min_ready_seconds
            rs.spec.replicas = 0
            rs.spec.replicas = du.new_rs_replicas(d, old, rs)
            rs.metadata.annotations[du.REVISION] = str(revision)
            rs.metadata.annotations[du.DESIRED_REPLICAS] = str(d.spec.replicas)
            rs.metadata.annotations[du.MAX_REPLICAS] = str(d.spec.replicas + surge)
            try:
                new = await self.client.create(rs)
                created = True
                self.recorder.event(
                    d,
                    NORMAL,
                    "ScalingReplicaSet",
                    f"Scaled up replica set {rs.metadata.name} to {rs.spec.replicas}",
                )
            except AlreadyExistsError:
                existing = await self.client.get("replicasets", rs.metadata.name, rs.metadata.namespace)
                assert isinstance(existing, apps_pb2.ReplicaSet)
                ref = controller_ref(existing)
                if (
                    ref is not None
                    and ref.uid == d.metadata.uid
                    and du.equal_ignore_hash(existing.spec.template, d.spec.template)
                ):
                    new = existing
                else:
                    # A hash collision: a different template owns the name. Bump and retry.
                    status = apps_pb2.DeploymentStatus()
                    status.CopyFrom(d.status)
                    status.collision_count = collision + 1
                    d.status.CopyFrom(status)
                    await self.client.update_status(d)
                    raise
        if new is not None and d.metadata.annotations.get(du.REVISION) != new.metadata.annotations.get(
            du.REVISION
        ):
            d.metadata.annotations[du.REVISION] = new.metadata.annotations[du.REVISION]
            updated_d = await self.client.update(d)
            d.metadata.resource_version = updated_d.metadata.resource_version
        return new, old, created

    async def _scale_rs(
        self, d: apps_pb2.Deployment, rs: apps_pb2.ReplicaSet, replicas: int
    ) -> apps_pb2.ReplicaSet:
        surge, _ = du.surge_and_unavailable(d)
        annotations = {
            du.DESIRED_REPLICAS: str(d.spec.replicas),
            du.MAX_REPLICAS: str(d.spec.replicas + surge),
        }
        if rs.spec.replicas == replicas and all(
            rs.metadata.annotations.get(k) == v for k, v in annotations.items()
        ):
            return rs
        updated = apps_pb2.ReplicaSet()
        updated.CopyFrom(rs)
        updated.spec.replicas = replicas
        updated.metadata.annotations.update(annotations)
        result = await self.client.update(updated)
        if rs.spec.replicas != replicas:
            direction = "up" if replicas > rs.spec.replicas else "down"
            self.recorder.event(
                d,
                NORMAL,
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {rs.metadata.name} to {replicas}",
            )
        return result

    # ------------------------------------------------------------------ strategies

    async def _rollout_rolling(self, d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet]) -> None:
        new, old, created = await self._new_rs(d, sets, create=True)
        assert new is not None
        all_sets = [*old, new]
        if await self._reconcile_new(d, all_sets, new):
            await self.sync_status(d, new, old, created=created)
            return
        if await self._reconcile_old(d, all_sets, old, new):
            await self.sync_status(d, new, old, created=created)
            return
        status = await self.sync_status(d, new, old, created=created)
        if status is not None and du.is_complete(status, new):
            await self._cleanup(d, old)

    async def _reconcile_new(
        self, d: apps_pb2.Deployment, all_sets: list[apps_pb2.ReplicaSet], new: apps_pb2.ReplicaSet
    ) -> bool:
        if new.spec.replicas == d.spec.replicas:
            return False
        if new.spec.replicas > d.spec.replicas:
            await self._scale_rs(d, new, d.spec.replicas)
            return True
        count = du.new_rs_replicas(d, all_sets, new)
        if count == new.spec.replicas:
            return False
        await self._scale_rs(d, new, count)
        return True

    async def _reconcile_old(
        self,
        d: apps_pb2.Deployment,
        all_sets: list[apps_pb2.ReplicaSet],
        old: list[apps_pb2.ReplicaSet],
        new: apps_pb2.ReplicaSet,
    ) -> bool:
        if du.replicas_sum(old) == 0:
            return False
        _, max_unavailable = du.surge_and_unavailable(d)
        min_available = d.spec.replicas - max_unavailable
        new_unavailable = new.spec.replicas - new.status.available_replicas
        max_scaled_down = du.replicas_sum(all_sets) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        scaled = 0
        sizes = {rs.metadata.name: rs.spec.replicas for rs in old}
        # First the old pods that are not available anyway (cleanupUnhealthyReplicas).
        for rs in old:
            if scaled >= max_scaled_down:
                break
            unhealthy = sizes[rs.metadata.name] - rs.status.available_replicas
            if sizes[rs.metadata.name] == 0 or unhealthy <= 0:
                continue
            down = min(max_scaled_down - scaled, unhealthy)
            sizes[rs.metadata.name] -= down
            scaled += down
        # Then available ones, as far as minAvailable allows.
        available = sum(rs.status.available_replicas for rs in all_sets)
        budget = available - min_available
        taken = 0
        for rs in old:
            if taken >= budget:
                break
            if sizes[rs.metadata.name] == 0:
                continue
            down = min(sizes[rs.metadata.name], budget - taken)
            sizes[rs.metadata.name] -= down
            taken += down
        changed = False
        for rs in old:
            if sizes[rs.metadata.name] != rs.spec.replicas:
                await self._scale_rs(d, rs, sizes[rs.metadata.name])
                changed = True
        return changed

    async def _rollout_recreate(self, d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet]) -> None:
        new, old = self._split(d, sets)
        active_old = [rs for rs in old if rs.spec.replicas > 0]
        if active_old:
            for rs in active_old:
                await self._scale_rs(d, rs, 0)
            await self.sync_status(d, new, old)
            return
        for rs in old:
            if any(isinstance(p, core_pb2.Pod) and not is_terminal(p) for p in owned(self.pods.store, rs)):
                await self.sync_status(d, new, old)
                return  # old pods still running: wait for their deletion events
        new, old, created = await self._new_rs(d, sets, create=True)
        assert new is not None
        if new.spec.replicas != d.spec.replicas:
            new = await self._scale_rs(d, new, d.spec.replicas)
        status = await self.sync_status(d, new, old, created=created)
        if status is not None and du.is_complete(status, new):
            await self._cleanup(d, old)

    async def _sync_scale(self, d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet]) -> None:
        """Paused or scaled: resize without rolling (DeploymentController.sync)."""
        new, old, _ = await self._new_rs(d, sets, create=False)
        await self._scale(d, new, old)
        if d.spec.paused:
            await self._cleanup(d, old)
        await self.sync_status(d, new, old)

    async def _scale(
        self, d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet | None, old: list[apps_pb2.ReplicaSet]
    ) -> None:
        all_sets = [*([new] if new else []), *old]
        active = [rs for rs in all_sets if rs.spec.replicas > 0]
        if len(active) <= 1:
            target = active[0] if active else (new or (old[-1] if old else None))
            if target is not None and target.spec.replicas != d.spec.replicas:
                await self._scale_rs(d, target, d.spec.replicas)
            return
        if (
            new is not None
            and new.spec.replicas == d.spec.replicas
            and new.status.available_replicas == d.spec.replicas
        ):
            for rs in old:
                if rs.spec.replicas:
                    await self._scale_rs(d, rs, 0)
            return
        surge, _ = du.surge_and_unavailable(d)
        allowed = d.spec.replicas + surge if d.spec.replicas > 0 else 0
        to_add = allowed - du.replicas_sum(active)
        sizes = du.proportions(active, to_add, allowed)
        for rs in active:
            size = sizes.get(rs.metadata.name, rs.spec.replicas)
            if size != rs.spec.replicas or du.annotated_int(rs, du.DESIRED_REPLICAS) != d.spec.replicas:
                await self._scale_rs(d, rs, size)

    async def _cleanup(self, d: apps_pb2.Deployment, old: list[apps_pb2.ReplicaSet]) -> None:
        limit = d.spec.revision_history_limit if d.spec.HasField("revision_history_limit") else 10
        idle = [
            rs
            for rs in old
            if rs.spec.replicas == 0
            and rs.status.replicas == 0
            and not rs.metadata.HasField("deletion_timestamp")
        ]
        idle.sort(key=du.revision_of)
        for rs in idle[: max(len(idle) - limit, 0)]:
            try:
                await self.client.delete(
                    "replicasets", rs.metadata.name, rs.metadata.namespace, uid=rs.metadata.uid
                )
            except (NotFoundError, ConflictError):
                continue

    # ------------------------------------------------------------------ rollback

    async def _rollback(self, d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet]) -> None:
        text = d.metadata.annotations[du.ROLLBACK_TO]
        wanted = int(text) if text.isdigit() else 0
        by_revision = sorted(sets, key=du.revision_of, reverse=True)
        if wanted == 0:
            target = by_revision[1] if len(by_revision) > 1 else None
        else:
            target = next((rs for rs in sets if du.revision_of(rs) == wanted), None)
        del d.metadata.annotations[du.ROLLBACK_TO]
        if target is None:
            self.recorder.event(d, WARNING, "RollbackRevisionNotFound", f"Unable to find revision {wanted}")
        elif du.equal_ignore_hash(target.spec.template, d.spec.template):
            self.recorder.event(
                d,
                NORMAL,
                "RollbackTemplateUnchanged",
                f"The rollback revision {wanted} is the current template",
            )
        else:
            d.spec.template.CopyFrom(du.strip_hash(target.spec.template))
            self.recorder.event(
                d,
                NORMAL,
                "DeploymentRollback",
                f"Rolled back deployment {d.metadata.name} to revision {du.revision_of(target)}",
            )
        await self.client.update(d)

    # ------------------------------------------------------------------ status

    async def sync_status(
        self,
        d: apps_pb2.Deployment,
        new: apps_pb2.ReplicaSet | None,
        old: list[apps_pb2.ReplicaSet],
        *,
        created: bool = False,
    ) -> apps_pb2.Deployment | None:
        # Re-read the ReplicaSets from the cache: this sync may have just scaled them.
        all_sets = [*old, *([new] if new else [])]
        _, max_unavailable = du.surge_and_unavailable(d)
        status = apps_pb2.DeploymentStatus()
        status.observed_generation = d.metadata.generation
        status.replicas = sum(rs.status.replicas for rs in all_sets)
        status.updated_replicas = new.status.replicas if new else 0
        status.ready_replicas = sum(rs.status.ready_replicas for rs in all_sets)
        status.available_replicas = sum(rs.status.available_replicas for rs in all_sets)
        status.unavailable_replicas = max(d.spec.replicas - status.available_replicas, 0)
        if d.status.HasField("collision_count"):
            status.collision_count = d.status.collision_count
        old_conditions = {c.type: c for c in d.status.conditions}
        if status.available_replicas >= d.spec.replicas - max_unavailable:
            available = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            available = (
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        conditions = {"Available": available}
        progressing = self._progressing(d, status, new, old_conditions.get("Progressing"), created)
        if progressing is not None:
            conditions["Progressing"] = progressing
        now = now_ts()
        for ctype in ("Available", "Progressing"):
            previous = old_conditions.get(ctype)
            if ctype not in conditions:
                if previous is not None:
                    status.conditions.append(previous)
                continue
            cstatus, reason, message = conditions[ctype]
            condition = status.conditions.add(type=ctype, status=cstatus, reason=reason, message=message)
            same = previous is not None and previous.status == cstatus
            condition.last_transition_time.CopyFrom(
                previous.last_transition_time if same and previous else now
            )
            keep_update_time = (
                previous is not None
                and previous.reason == reason
                and previous.status == cstatus
                and not (
                    ctype == "Progressing"
                    and reason == "ReplicaSetUpdated"
                    and self._made_progress(d.status, status)
                )
            )
            condition.last_update_time.CopyFrom(
                previous.last_update_time if keep_update_time and previous else now
            )
        if status == d.status:
            result: apps_pb2.Deployment | None = d
        else:
            updated = apps_pb2.Deployment()
            updated.CopyFrom(d)
            updated.status.CopyFrom(status)
            try:
                result = await self.client.update_status(updated)
            except NotFoundError:
                return None
        self._requeue_for_deadline(d, status, new)
        return result

    @staticmethod
    def _made_progress(old: apps_pb2.DeploymentStatus, new: apps_pb2.DeploymentStatus) -> bool:
        return (
            new.updated_replicas > old.updated_replicas
            or new.ready_replicas > old.ready_replicas
            or new.available_replicas > old.available_replicas
            or (old.replicas - old.updated_replicas) > (new.replicas - new.updated_replicas)
        )

    def _progressing(
        self,
        d: apps_pb2.Deployment,
        status: apps_pb2.DeploymentStatus,
        new: apps_pb2.ReplicaSet | None,
        previous: apps_pb2.DeploymentCondition | None,
        created: bool,
    ) -> tuple[str, str, str] | None:
        name = new.metadata.name if new else ""
        if d.spec.paused:
            return ("Unknown", "DeploymentPaused", "Deployment is paused")
        if previous is not None and previous.reason == "DeploymentPaused":
            return ("Unknown", "DeploymentResumed", "Deployment is resumed")
        if not d.spec.HasField("progress_deadline_seconds"):
            return None
        complete = (
            new is not None
            and status.updated_replicas == d.spec.replicas
            and status.replicas == d.spec.replicas
            and status.available_replicas == d.spec.replicas
        )
        if complete:
            return ("True", "NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.')
        if created:
            return ("True", "NewReplicaSetCreated", f'Created new replica set "{name}"')
        if previous is None or self._made_progress(d.status, status):
            return ("True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
        if previous.reason == "ProgressDeadlineExceeded":
            return ("False", "ProgressDeadlineExceeded", previous.message)
        deadline = seconds(previous.last_update_time) + d.spec.progress_deadline_seconds
        if previous.reason != "NewReplicaSetAvailable" and time.time() > deadline:
            self.recorder.event(
                d, WARNING, "ProgressDeadlineExceeded", f'ReplicaSet "{name}" has timed out progressing.'
            )
            return ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{name}" has timed out progressing.')
        return (previous.status, previous.reason, previous.message)

    def _requeue_for_deadline(
        self, d: apps_pb2.Deployment, status: apps_pb2.DeploymentStatus, new: apps_pb2.ReplicaSet | None
    ) -> None:
        if d.spec.paused or not d.spec.HasField("progress_deadline_seconds"):
            return
        progressing = next((c for c in status.conditions if c.type == "Progressing"), None)
        if progressing is None or progressing.reason in (
            "NewReplicaSetAvailable",
            "ProgressDeadlineExceeded",
        ):
            return
        remaining = seconds(progressing.last_update_time) + d.spec.progress_deadline_seconds - time.time()
        self.enqueue_after(object_key(d), max(remaining, 0.0) + 0.05)


async def rollback(client: Client, namespace: str, name: str, to_revision: int = 0) -> None:
    """`rollout undo`: ask the controller to roll back to a revision (0: the previous one)."""
    await client.patch(
        "deployments", name, {"metadata": {"annotations": {du.ROLLBACK_TO: str(to_revision)}}}, namespace
    )
