"""The quota controller: keeps every ResourceQuota's status (hard, and used recomputed from the
namespace's objects) current. Admission charges quotas as objects are created; this
recount is what releases usage when objects go away and corrects charges whose writes failed.

A change to a counted object recomputes only the quotas of its namespace. The recount reads
the quota and then the objects from the apiserver, not from the informers: a cache that has
not yet seen an object admission just charged for would otherwise erase the charge, and the
write at the quota's resourceVersion conflicts with any charge made after the read."""

from __future__ import annotations

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.client.errors import NotFoundError
from services.controllers.base import Controller, ControllerContext
from services.machinery import quota

COUNTED_RESOURCES = tuple(quota.COUNTED.values())


class ResourceQuotaController(Controller):
    name = "resourcequota"
    default_workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.quotas = self.informer("resourcequotas")
        self.quotas.add_handlers(on_add=self._quota_event, on_update=lambda _o, n: self._quota_event(n))
        self.objects = {resource: self.informer(resource) for resource in COUNTED_RESOURCES}
        for informer in self.objects.values():
            informer.add_handlers(
                on_add=self._object_event,
                on_update=self._object_updated,
                on_delete=self._object_event,
            )

    def _quota_event(self, item: Message) -> None:
        self.enqueue(item.metadata.namespace)  # type: ignore[attr-defined]

    def _object_event(self, obj: Message) -> None:
        namespace = obj.metadata.namespace  # type: ignore[attr-defined]
        if self.quotas.store.indexes["namespace"].get(namespace):
            self.enqueue(namespace)

    def _object_updated(self, old: Message, new: Message) -> None:
        if quota.usage_of(old) != quota.usage_of(new):
            self._object_event(new)

    async def sync(self, namespace: str) -> None:
        if not self.quotas.store.indexes["namespace"].get(namespace):
            return
        items = (await self.client.list("resourcequotas", namespace)).items
        objects: list[Message] = []
        for resource in COUNTED_RESOURCES:
            objects.extend((await self.client.list_all(resource, namespace)).items)
        usage = quota.total(objects)
        for item in items:
            assert isinstance(item, core_pb2.ResourceQuota)
            status = core_pb2.ResourceQuotaStatus()
            status.hard.update(item.spec.hard)
            status.used.update(quota.restrict(usage, item.spec.hard))
            if status == item.status:
                continue
            updated = core_pb2.ResourceQuota()
            updated.CopyFrom(item)
            updated.status.CopyFrom(status)
            try:
                await self.client.update_status(updated)
            except NotFoundError:
                continue
