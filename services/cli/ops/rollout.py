"""`rollout`: the status viewers (kubectl's polymorphichelpers, message for message), the
revision history (a Deployment's ReplicaSets, a DaemonSet's or StatefulSet's
ControllerRevisions), undo (copy a revision's template back), pause/resume and restart."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.cli.errors import CLIError
from services.cli.ops.objects import controller_of, meta_of, update_with_retries
from services.client.client import Client
from services.client.errors import ExpiredError
from services.machinery import labels
from services.machinery.kinds import REGISTRY, KindInfo

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
REVISION_HASH_LABEL = "controller-revision-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
# Annotations a rollback keeps from the Deployment instead of copying them from the ReplicaSet.
_KEPT_ON_ROLLBACK = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
        "deployment.kubernetes.io/rollback-to",
    }
)

DEPLOYMENTS = REGISTRY.by_name("deployments")
REPLICA_SETS = REGISTRY.by_name("replicasets")
CONTROLLER_REVISIONS = REGISTRY.by_name("controllerrevisions")


def group_kind(info: KindInfo) -> str:
    """Go's GroupKind.String(): `ReplicaSet.apps`, `Pod`."""
    return f"{info.kind}.{info.group}" if info.group else info.kind


def resource_label(info: KindInfo) -> str:
    """`deployments.apps`: how kubectl names a resource in per-object rollout errors."""
    return info.resource


# ---------------------------------------------------------------------- status


StatusViewer = Callable[[Message, int], tuple[str, bool]]


def deployment_status(obj: Message, revision: int) -> tuple[str, bool]:
    assert isinstance(obj, apps_pb2.Deployment)
    d = obj
    name = d.metadata.name
    if revision > 0:
        text = d.metadata.annotations.get(REVISION, "")
        try:
            current = int(text)
        except ValueError:
            raise CLIError(
                f'cannot get the revision of deployment "{name}": invalid revision {text!r}'
            ) from None
        if current != revision:
            raise CLIError(
                f"desired revision ({revision}) is different from the running revision ({current})"
            )
    if d.metadata.generation > d.status.observed_generation:
        return "Waiting for deployment spec update to be observed...", False
    for condition in d.status.conditions:
        if condition.type == "Progressing" and condition.reason == TIMED_OUT_REASON:
            raise CLIError(f'deployment "{name}" exceeded its progress deadline')
    status = d.status
    if d.spec.HasField("replicas") and status.updated_replicas < d.spec.replicas:
        return (
            f'Waiting for deployment "{name}" rollout to finish: {status.updated_replicas} out of '
            f"{d.spec.replicas} new replicas have been updated...",
            False,
        )
    if status.replicas > status.updated_replicas:
        return (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{status.replicas - status.updated_replicas} old replicas are pending termination...",
            False,
        )
    if status.available_replicas < status.updated_replicas:
        return (
            f'Waiting for deployment "{name}" rollout to finish: {status.available_replicas} of '
            f"{status.updated_replicas} updated replicas are available...",
            False,
        )
    return f'deployment "{name}" successfully rolled out', True


def daemonset_status(obj: Message, _revision: int) -> tuple[str, bool]:
    assert isinstance(obj, apps_pb2.DaemonSet)
    ds = obj
    if ds.spec.update_strategy.type != "RollingUpdate":
        raise CLIError("rollout status is only available for RollingUpdate strategy type")
    if ds.metadata.generation > ds.status.observed_generation:
        return "Waiting for daemon set spec update to be observed...", False
    status = ds.status
    if status.updated_number_scheduled < status.desired_number_scheduled:
        return (
            f'Waiting for daemon set "{ds.metadata.name}" rollout to finish: '
            f"{status.updated_number_scheduled} out of {status.desired_number_scheduled} new pods "
            "have been updated...",
            False,
        )
    if status.number_available < status.desired_number_scheduled:
        return (
            f'Waiting for daemon set "{ds.metadata.name}" rollout to finish: {status.number_available} '
            f"of {status.desired_number_scheduled} updated pods are available...",
            False,
        )
    return f'daemon set "{ds.metadata.name}" successfully rolled out', True


def statefulset_status(obj: Message, _revision: int) -> tuple[str, bool]:
    assert isinstance(obj, apps_pb2.StatefulSet)
    sts = obj
    strategy = sts.spec.update_strategy
    if strategy.type != "RollingUpdate":
        raise CLIError("rollout status is only available for RollingUpdate strategy type")
    status = sts.status
    if status.observed_generation == 0 or sts.metadata.generation > status.observed_generation:
        return "Waiting for statefulset spec update to be observed...", False
    replicas = sts.spec.replicas if sts.spec.HasField("replicas") else None
    if replicas is not None and status.ready_replicas < replicas:
        return f"Waiting for {replicas - status.ready_replicas} pods to be ready...", False
    if (
        replicas is not None
        and strategy.HasField("rolling_update")
        and strategy.rolling_update.HasField("partition")
    ):
        wanted = replicas - strategy.rolling_update.partition
        if status.updated_replicas < wanted:
            return (
                f"Waiting for partitioned roll out to finish: {status.updated_replicas} out of {wanted} "
                "new pods have been updated...",
                False,
            )
        return f"partitioned roll out complete: {status.updated_replicas} new pods have been updated...", True
    if status.update_revision != status.current_revision:
        return (
            f"waiting for statefulset rolling update to complete {status.updated_replicas} pods at "
            f"revision {status.update_revision}...",
            False,
        )
    return (
        f"statefulset rolling update complete {status.current_replicas} pods at revision "
        f"{status.current_revision}...",
        True,
    )


_VIEWERS: dict[str, StatusViewer] = {
    "Deployment": deployment_status,
    "DaemonSet": daemonset_status,
    "StatefulSet": statefulset_status,
}


def status_viewer(info: KindInfo) -> StatusViewer:
    viewer = _VIEWERS.get(info.kind) if info.group == "apps" else None
    if viewer is None:
        raise CLIError(f"no status viewer has been implemented for {group_kind(info)}")
    return viewer


async def wait_for_rollout(
    client: Client,
    info: KindInfo,
    name: str,
    namespace: str,
    emit: Callable[[str], None],
    *,
    revision: int = 0,
    watch: bool = True,
    timeout: float = 0.0,
) -> None:
    """Print the status of every version of the object seen until the rollout is done (the
    list, then every watch event), as kubectl's UntilWithSync loop does. timeout 0 waits
    forever; --watch=false prints the current status once."""
    if revision < 0:
        raise CLIError(f"revision must be a positive integer: {revision}")
    viewer = status_viewer(info)
    try:
        async with asyncio.timeout(timeout if timeout > 0 else None):
            await _follow(client, info, name, namespace, viewer, emit, revision, watch)
    except TimeoutError:
        raise CLIError("timed out waiting for the condition") from None


async def _follow(
    client: Client,
    info: KindInfo,
    name: str,
    namespace: str,
    viewer: StatusViewer,
    emit: Callable[[str], None],
    revision: int,
    watch: bool,
) -> None:
    while True:
        obj = await client.get(info, name, namespace)
        message, done = viewer(obj, revision)
        emit(message)
        if done or not watch:
            return
        resource_version = meta_of(obj).resource_version
        try:
            while True:
                async for event in client.watch(
                    info,
                    namespace,
                    field_selector=f"metadata.name={name}",
                    resource_version=resource_version,
                    bookmarks=True,
                ):
                    resource_version = meta_of(event.obj).resource_version or resource_version
                    if event.type == "BOOKMARK":
                        continue
                    if event.type == "DELETED":
                        raise CLIError("object has been deleted")
                    message, done = viewer(event.obj, revision)
                    emit(message)
                    if done:
                        return
        except ExpiredError:
            continue  # the revision was compacted away: read the object again


# ---------------------------------------------------------------------- history


@dataclass(frozen=True)
class Revision:
    """One revision: a Deployment's ReplicaSet, or a DaemonSet's or StatefulSet's
    ControllerRevision; `template` is the pod template it ran."""

    number: int
    change_cause: str
    template: core_pb2.PodTemplateSpec
    source: Message


HISTORY_KINDS = ("Deployment", "DaemonSet", "StatefulSet")


def has_history(info: KindInfo) -> bool:
    return info.group == "apps" and info.kind in HISTORY_KINDS


def _revision_of(rs: apps_pb2.ReplicaSet) -> int | None:
    try:
        return int(rs.metadata.annotations.get(REVISION, ""))
    except ValueError:
        return None


def _controlled_by(obj: Message, owner: Message) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.uid == meta_of(owner).uid


async def owned_replica_sets(client: Client, deployment: apps_pb2.Deployment) -> list[apps_pb2.ReplicaSet]:
    """The ReplicaSets the Deployment controls: matching its selector and owned by its uid."""
    selector = labels.from_label_selector(deployment.spec.selector)
    listed = await client.list_all(REPLICA_SETS, deployment.metadata.namespace, label_selector=str(selector))
    return [
        rs for rs in listed.items if isinstance(rs, apps_pb2.ReplicaSet) and _controlled_by(rs, deployment)
    ]


async def _deployment_history(client: Client, deployment: apps_pb2.Deployment) -> list[Revision]:
    revisions = []
    for rs in await owned_replica_sets(client, deployment):
        number = _revision_of(rs)
        if number is not None:
            cause = rs.metadata.annotations.get(CHANGE_CAUSE, "")
            revisions.append(Revision(number, cause, rs.spec.template, rs))
    return revisions


async def _controller_revisions(client: Client, owner: Message) -> list[Revision]:
    """A DaemonSet's or StatefulSet's ControllerRevisions (the controllers keep one per
    distinct template, renumbering one that comes back)."""
    meta = meta_of(owner)
    listed = await client.list_all(CONTROLLER_REVISIONS, meta.namespace)
    revisions = []
    for item in listed.items:
        if isinstance(item, apps_pb2.ControllerRevision) and _controlled_by(item, owner):
            cause = item.metadata.annotations.get(CHANGE_CAUSE, "")
            revisions.append(Revision(item.revision, cause, item.data.spec.template, item))
    return revisions


async def history(client: Client, info: KindInfo, namespace: str, name: str) -> list[Revision]:
    """The object's revisions, oldest first."""
    if not has_history(info):
        raise CLIError(f'no history viewer has been implemented for "{group_kind(info)}"')
    owner = await client.get(info, name, namespace)
    if isinstance(owner, apps_pb2.Deployment):
        revisions = await _deployment_history(client, owner)
    else:
        revisions = await _controller_revisions(client, owner)
    return sorted(revisions, key=lambda r: r.number)


def history_table(revisions: list[Revision]) -> str:
    """kubectl's REVISION/CHANGE-CAUSE table (tabwriter padding 2), or its empty-history line."""
    if not revisions:
        return "No rollout history found.\n"
    rows = [("REVISION", "CHANGE-CAUSE")] + [(str(r.number), r.change_cause or "<none>") for r in revisions]
    width = max(len(row[0]) for row in rows) + 2
    return "".join(f"{number.ljust(width)}{cause}\n" for number, cause in rows) + "\n"


def find_revision(revisions: list[Revision], number: int) -> Revision:
    for revision in revisions:
        if revision.number == number:
            return revision
    raise CLIError("unable to find the specified revision")


# ---------------------------------------------------------------------- undo


def _without_label(template: core_pb2.PodTemplateSpec, label: str) -> core_pb2.PodTemplateSpec:
    copy = core_pb2.PodTemplateSpec()
    copy.CopyFrom(template)
    copy.metadata.labels.pop(label, None)
    return copy


def _rollback_target(revisions: list[Revision], to_revision: int, info: KindInfo, name: str) -> Revision:
    if to_revision > 0:
        for revision in revisions:
            if revision.number == to_revision:
                return revision
        raise CLIError(f"unable to find specified revision {to_revision} in history")
    if len(revisions) < 2:
        if info.kind == "Deployment":
            raise CLIError(f'no rollout history found for deployment "{name}"')
        raise CLIError("no last revision to roll back to")
    return revisions[-2]


async def undo(client: Client, info: KindInfo, namespace: str, name: str, to_revision: int = 0) -> str:
    """Copy the chosen revision's template back into the object (for a Deployment also the
    ReplicaSet's annotations, minus the bookkeeping ones); its controller then rolls it out.
    Returns the operation kubectl prints after the name."""
    if not has_history(info):
        raise CLIError(f'no rollbacker has been implemented for "{group_kind(info)}"')
    if to_revision < 0:
        raise CLIError(f"unable to find specified revision {to_revision} in history")
    owner = await client.get(info, name, namespace)
    target = _rollback_target(await history(client, info, namespace, name), to_revision, info, name)
    if isinstance(owner, apps_pb2.Deployment) and owner.spec.paused:
        raise CLIError(
            "you cannot rollback a paused deployment; resume it first with "
            f"'pinctl rollout resume deployment/{name}' and try again"
        )
    label = HASH_LABEL if info.kind == "Deployment" else REVISION_HASH_LABEL
    template = _without_label(target.template, label)
    if template == owner.spec.template:  # type: ignore[attr-defined]
        return f"skipped rollback (current template already matches revision {to_revision})"

    def restore(obj: Message) -> None:
        if isinstance(obj, apps_pb2.Deployment):
            kept = {k: v for k, v in obj.metadata.annotations.items() if k in _KEPT_ON_ROLLBACK}
            source = meta_of(target.source).annotations
            copied = {k: v for k, v in source.items() if k not in _KEPT_ON_ROLLBACK}
            obj.metadata.annotations.clear()
            obj.metadata.annotations.update({**kept, **copied})
        obj.spec.template.CopyFrom(template)  # type: ignore[attr-defined]

    await update_with_retries(client, info, name, namespace, restore)
    return "rolled back"


# ---------------------------------------------------------------------- pause, resume, restart


async def set_paused(client: Client, info: KindInfo, namespace: str, name: str, paused: bool) -> str:
    """`paused`/`resumed`, or `already paused`/`already resumed` when nothing changes."""
    verb = "paused" if paused else "resumed"
    if info.kind != "Deployment" or info.group != "apps":
        action = "pausing" if paused else "resuming"
        raise CLIError(f'{resource_label(info)} "{name}" {action} is not supported')
    current = await client.get(info, name, namespace)
    assert isinstance(current, apps_pb2.Deployment)
    if current.spec.paused == paused:
        return f"already {verb}"

    def apply(obj: Message) -> None:
        assert isinstance(obj, apps_pb2.Deployment)
        obj.spec.paused = paused

    await update_with_retries(client, info, name, namespace, apply)
    return verb


def restart_stamp(now: dt.datetime | None = None) -> str:
    """Go's time.Now().Format(time.RFC3339): local time with its offset, `Z` for UTC."""
    moment = (now or dt.datetime.now()).astimezone().replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


async def restart(client: Client, info: KindInfo, namespace: str, name: str) -> None:
    """Stamp the pod template with kubectl.kubernetes.io/restartedAt so the controller rolls
    every pod."""
    if info.group != "apps" or info.kind not in ("Deployment", "DaemonSet", "StatefulSet"):
        raise CLIError(f'{resource_label(info)} "{name}" restarting is not supported')
    stamp = restart_stamp()

    def apply(obj: Message) -> None:
        if isinstance(obj, apps_pb2.Deployment) and obj.spec.paused:
            raise CLIError(
                f'{resource_label(info)} "{name}" can\'t restart paused deployment (run rollout resume first)'
            )
        obj.spec.template.metadata.annotations[RESTARTED_AT] = stamp  # type: ignore[attr-defined]

    await update_with_retries(client, info, name, namespace, apply)
