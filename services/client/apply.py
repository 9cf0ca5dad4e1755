"""Create-or-update from manifests, the server-side half of `apply -f` for pinnace's CLI and
bootstrap code: an object that exists is replaced (keeping its resourceVersion for optimistic
concurrency); one that does not is created."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from services.client.client import Client
from services.client.errors import ConflictError, NotFoundError
from services.machinery.codec import decode_manifests
from services.machinery.kinds import REGISTRY

_RETRIES = 5


@dataclass(frozen=True)
class Applied:
    obj: Message
    action: str  # "created", "configured" or "unchanged"


async def apply_object(client: Client, obj: Message, default_namespace: str = "default") -> Applied:
    info = REGISTRY.by_message(obj)
    meta = obj.metadata  # type: ignore[attr-defined]
    if info.namespaced and not meta.namespace:
        meta.namespace = default_namespace
    for _ in range(_RETRIES):
        try:
            current = await client.get(info, meta.name, meta.namespace)
        except NotFoundError:
            return Applied(await client.create(obj), "created")
        desired = type(obj)()
        desired.CopyFrom(obj)
        desired_meta = desired.metadata  # type: ignore[attr-defined]
        desired_meta.resource_version = current.metadata.resource_version  # type: ignore[attr-defined]
        if "status" in desired.DESCRIPTOR.fields_by_name and current.HasField("status"):
            desired.status.CopyFrom(current.status)  # type: ignore[attr-defined]
        try:
            updated = await client.update(desired)
        except ConflictError:
            continue
        same = updated.metadata.resource_version == current.metadata.resource_version  # type: ignore[attr-defined]
        return Applied(updated, "unchanged" if same else "configured")
    raise ConflictError(f"could not apply {info.kind} {meta.name}: it kept changing", grpc.StatusCode.ABORTED)


async def apply_manifests(client: Client, text: str, default_namespace: str = "default") -> list[Applied]:
    return [await apply_object(client, item.obj, default_namespace) for item in decode_manifests(text)]
