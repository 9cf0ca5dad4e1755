"""NamespaceLifecycle: no new content in a missing or terminating namespace, and the
namespaces the system needs cannot be deleted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.admission.chain import AdmissionPlugin, Attributes, Operation

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
# Events about a namespace's own deletion must still be recordable in it.
_ALLOWED_WHILE_TERMINATING = ("Event",)

NamespaceLookup = Callable[[str], Awaitable[core_pb2.Namespace | None]]


class NamespaceLifecycle(AdmissionPlugin):
    name = "NamespaceLifecycle"

    def __init__(self, lookup: NamespaceLookup) -> None:
        self.lookup = lookup

    async def validate(self, attrs: Attributes) -> None:
        if attrs.operation is Operation.DELETE and attrs.info.kind == "Namespace":
            if attrs.name in IMMORTAL_NAMESPACES:
                raise errors.forbidden(attrs.info, attrs.name, "this namespace may not be deleted")
            return
        if attrs.operation is not Operation.CREATE or not attrs.info.namespaced or attrs.subresource:
            return
        namespace = await self.lookup(attrs.namespace)
        if namespace is None:
            raise errors.APIError(
                "NotFound",
                f'namespaces "{attrs.namespace}" not found',
                kind="namespaces",
                name=attrs.namespace,
            )
        terminating = namespace.status.phase == "Terminating" or namespace.metadata.HasField(
            "deletion_timestamp"
        )
        if terminating and attrs.info.kind not in _ALLOWED_WHILE_TERMINATING:
            raise errors.forbidden(
                attrs.info,
                attrs.name,
                f"unable to create new content in namespace {attrs.namespace} because it is being terminated",
            )
