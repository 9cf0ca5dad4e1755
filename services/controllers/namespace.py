"""Namespace deletion: a deleted namespace is Terminating (the apiserver sets the phase and
refuses new content); this controller deletes every namespaced object in it, and once nothing
is left clears the `kubernetes` spec finalizer so the namespace leaves storage.

Pods on nodes go gracefully (their kubelets confirm), so a namespace may take a while: the
controller re-checks every `namespace_retry_seconds` until it is empty."""

from __future__ import annotations

from services.client.errors import ConflictError, NotFoundError
from services.client.events import WARNING
from services.controllers.base import Controller, ControllerContext
from services.machinery.kinds import REGISTRY, KindInfo

FINALIZER = "kubernetes"


def namespaced_kinds() -> list[KindInfo]:
    # Events last: deleting them first would lose what the deletion itself reports.
    kinds = [k for k in REGISTRY.stored() if k.namespaced]
    return sorted(kinds, key=lambda k: k.kind == "Event")


class NamespaceController(Controller):
    name = "namespace"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.namespaces = self.informer("namespaces")
        self.namespaces.add_handlers(on_add=self.enqueue_obj, on_update=lambda _o, n: self.enqueue_obj(n))

    async def sync(self, name: str) -> None:
        namespace = self.namespaces.store.get(name)
        if namespace is None or not namespace.metadata.HasField("deletion_timestamp"):  # type: ignore[attr-defined]
            return
        remaining = await self.delete_content(name)
        if remaining:
            self.enqueue_after(name, self.settings.namespace_retry_seconds)
            return
        await self._finalize(name)

    async def delete_content(self, namespace: str) -> int:
        """Delete what is left; return how many objects still exist (being deleted)."""
        remaining = 0
        for info in namespaced_kinds():
            listed = await self.client.list_all(info, namespace)
            for obj in listed.items:
                meta = obj.metadata  # type: ignore[attr-defined]
                remaining += 1
                if meta.HasField("deletion_timestamp"):
                    continue
                try:
                    _, removed = await self.client.delete(info, meta.name, namespace, uid=meta.uid)
                except (NotFoundError, ConflictError):
                    removed = True
                if removed:
                    remaining -= 1
        return remaining

    async def _finalize(self, name: str) -> None:
        try:
            namespace = await self.client.get("namespaces", name)
        except NotFoundError:
            return
        spec = namespace.spec  # type: ignore[attr-defined]
        if FINALIZER not in spec.finalizers:
            return
        kept = [f for f in spec.finalizers if f != FINALIZER]
        del spec.finalizers[:]
        spec.finalizers.extend(kept)
        try:
            await self.client.update(namespace)
        except NotFoundError:
            return
        except ConflictError:
            self.recorder.event(namespace, WARNING, "FinalizeFailed", "namespace changed; retrying")
            raise
