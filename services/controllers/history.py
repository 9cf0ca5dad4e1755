"""ControllerRevisions: the history of a DaemonSet's or StatefulSet's pod template
(Kubernetes' controller history).

Each distinct template is stored once as an immutable apps/v1 ControllerRevision named
`<owner>-<hash>`, labelled `controller-revision-hash: <hash>`, owned (controller reference) by
the DaemonSet or StatefulSet, with a `revision` number that grows with every change. Pods carry
the label too, so a controller tells old pods from new ones by label, and a StatefulSet can
recreate a pod at the revision it belongs to (below the partition) from the revision's
template instead of the current one.

Going back to an older template (a rollback, or a user undoing an edit) finds the equal
revision and gives it the next number instead of creating a copy, so `revision` always
orders the history. Hash clashes (same name, different template) raise the owner's
`status.collisionCount`, which is part of the hash. Revisions no live pod uses, beyond
`revisionHistoryLimit`, are deleted oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.errors import AlreadyExistsError, NotFoundError
from services.controllers import deployment_util as du
from services.controllers.podutil import controller_ref, owner_reference
from services.machinery.codec import encode_message

REVISION_LABEL = "controller-revision-hash"
# Kubernetes' ControllerRevisionName keeps the prefix short enough for a DNS subdomain.
_MAX_PREFIX = 223


def fnv32(data: bytes) -> int:
    """FNV-1 (not 1a), 32 bits: the hash Kubernetes' HashControllerRevision uses."""
    h = 0x811C9DC5
    for byte in data:
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= byte
    return h


def revision_data(template: core_pb2.PodTemplateSpec) -> apps_pb2.ControllerRevisionData:
    data = apps_pb2.ControllerRevisionData()
    data.spec.template.CopyFrom(template)
    data.spec.template.metadata.labels.pop(REVISION_LABEL, None)
    return data


def revision_hash(data: apps_pb2.ControllerRevisionData, collision_count: int) -> str:
    raw = data.SerializeToString(deterministic=True) + str(collision_count).encode()
    return du.safe_encode(fnv32(raw))


def revision_name(owner: str, digest: str) -> str:
    return f"{owner[:_MAX_PREFIX]}-{digest}"


def new_revision(
    owner: Message, template: core_pb2.PodTemplateSpec, number: int, collision_count: int
) -> apps_pb2.ControllerRevision:
    data = revision_data(template)
    digest = revision_hash(data, collision_count)
    meta = owner.metadata  # type: ignore[attr-defined]
    revision = apps_pb2.ControllerRevision(data=data, revision=number)
    revision.metadata.name = revision_name(meta.name, digest)
    revision.metadata.namespace = meta.namespace
    revision.metadata.labels.update(template.metadata.labels)
    revision.metadata.labels[REVISION_LABEL] = digest
    revision.metadata.owner_references.append(owner_reference(owner))
    return revision


def digest_of(revision: apps_pb2.ControllerRevision) -> str:
    return revision.metadata.labels.get(REVISION_LABEL, "")


def ordered(revisions: Iterable[Message]) -> list[apps_pb2.ControllerRevision]:
    """By revision number, then name (kube's history.SortControllerRevisions)."""
    found = [r for r in revisions if isinstance(r, apps_pb2.ControllerRevision)]
    return sorted(found, key=lambda r: (r.revision, r.metadata.name))


def owned_by(revisions: Iterable[Message], owner: Message) -> list[apps_pb2.ControllerRevision]:
    uid = owner.metadata.uid  # type: ignore[attr-defined]
    return ordered(r for r in revisions if (ref := controller_ref(r)) is not None and ref.uid == uid)


async def update_revision(
    client: Client,
    owner: Message,
    template: core_pb2.PodTemplateSpec,
    revisions: list[apps_pb2.ControllerRevision],
    collision_count: int,
) -> tuple[apps_pb2.ControllerRevision, int]:
    """The revision of `template` (existing, renumbered when it is an older one, or new) and
    the collision count it took."""
    data = revision_data(template)
    number = (revisions[-1].revision if revisions else 0) + 1
    equal = [r for r in revisions if r.data == data]
    if equal:
        chosen = equal[-1]
        if chosen is revisions[-1]:
            return chosen, collision_count
        renumbered = apps_pb2.ControllerRevision()
        renumbered.CopyFrom(chosen)
        renumbered.revision = number
        updated = await client.update(renumbered)
        return updated, collision_count
    uid = owner.metadata.uid  # type: ignore[attr-defined]
    while True:
        revision = new_revision(owner, template, number, collision_count)
        try:
            return await client.create(revision), collision_count
        except AlreadyExistsError:
            clash = await client.get(
                "controllerrevisions", revision.metadata.name, revision.metadata.namespace
            )
            assert isinstance(clash, apps_pb2.ControllerRevision)
            ref = controller_ref(clash)
            if clash.data == data and ref is not None and ref.uid == uid:
                return clash, collision_count  # our own create, not seen by the cache yet
            collision_count += 1


async def trim(
    client: Client,
    revisions: list[apps_pb2.ControllerRevision],
    keep: Iterable[str],
    in_use: set[str],
    limit: int,
) -> int:
    """Delete the oldest revisions that are neither kept nor used by a live pod (pods'
    `controller-revision-hash` labels, as digests or names), leaving `limit`; returns how many."""
    kept = set(keep)
    idle = [
        r
        for r in revisions
        if r.metadata.name not in kept and r.metadata.name not in in_use and digest_of(r) not in in_use
    ]
    doomed = idle[: max(len(idle) - limit, 0)]
    for revision in doomed:
        try:
            await client.delete(
                "controllerrevisions",
                revision.metadata.name,
                revision.metadata.namespace,
                uid=revision.metadata.uid,
            )
        except NotFoundError:
            continue
    return len(doomed)


class RollbackError(Exception):
    """The requested revision is not in the history (kubectl's messages)."""


async def rollback(client: Client, resource: str, namespace: str, name: str, to_revision: int = 0) -> str:
    """`rollout undo` of a DaemonSet or StatefulSet, as kubectl does it: copy the template of
    the chosen revision (0: the one before the current) back into the owner; the controller
    then renumbers that revision. Returns kubectl's message."""
    owner = await client.get(resource, name, namespace)
    listed = await client.list("controllerrevisions", namespace)
    history = owned_by(listed.items, owner)
    template: core_pb2.PodTemplateSpec = owner.spec.template  # type: ignore[attr-defined]
    if to_revision == 0:
        if len(history) < 2:
            raise RollbackError("no last revision to roll back to")
        target = history[-2]
    else:
        matches = [r for r in history if r.revision == to_revision]
        if not matches:
            raise RollbackError(f"unable to find specified revision {to_revision} in history")
        target = matches[-1]
    if target.data == revision_data(template):
        return f"skipped rollback (current template already matches revision {target.revision})"
    # A JSON patch replacing the whole template, as kubectl's undo patches it: no
    # resourceVersion, so the controller's concurrent status writes cannot make it conflict.
    replace = [
        {"op": "replace", "path": "/spec/template", "value": encode_message(target.data.spec.template)}
    ]
    await client.patch(resource, name, replace, namespace, patch_type="json")
    return "rolled back"
