"""The garbage collector: the graph of ownerReferences across every watched kind, and the
three deletion propagations Kubernetes defines.

- Background: an object whose owners are all gone is deleted (with a uid precondition, so
  a new object with the same name is never hit).
- Orphan: an owner being deleted with the `orphan` finalizer first has its reference removed
  from every dependent, then the finalizer removed (it then leaves storage).
- Foreground: an owner with the `foregroundDeletion` finalizer has its dependents deleted
  (foreground too, so grandchildren go first) and keeps its finalizer until no dependent whose
  reference sets blockOwnerDeletion remains.

Owners a dependent names but no informer has shown are checked with a live GET before
anything is deleted, so a stale cache never deletes a live object's dependents."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message

from pinnace.api.meta.v1 import meta_pb2
from services.client.errors import ConflictError, NotFoundError
from services.controllers.base import Controller, ControllerContext
from services.machinery.kinds import REGISTRY, KindInfo, UnknownKindError

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"

# What the collector watches; kinds without owners (events, leases of nodes) cost a watch each
# and are left out.
DEFAULT_RESOURCES = (
    "pods",
    "replicationcontrollers",
    "replicasets",
    "deployments",
    "daemonsets",
    "statefulsets",
    "controllerrevisions",
    "jobs",
    "cronjobs",
    "services",
    "endpoints",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "serviceaccounts",
    "horizontalpodautoscalers",
)


@dataclass
class GraphNode:
    uid: str
    info: KindInfo
    namespace: str
    name: str
    owners: list[meta_pb2.OwnerReference] = field(default_factory=list)
    finalizers: tuple[str, ...] = ()
    deleting: bool = False


class GarbageCollector(Controller):
    name = "garbagecollector"
    default_workers = 5

    def __init__(self, ctx: ControllerContext, resources: tuple[str, ...] = DEFAULT_RESOURCES) -> None:
        super().__init__(ctx)
        self.nodes: dict[str, GraphNode] = {}
        self.dependents: dict[str, set[str]] = {}
        for resource in resources:
            informer = self.informer(resource)
            informer.add_handlers(
                on_add=self._observed,
                on_update=lambda _old, new: self._observed(new),
                on_delete=self._gone,
            )

    # ------------------------------------------------------------------ the graph

    def _observed(self, obj: Message) -> None:
        meta = obj.metadata  # type: ignore[attr-defined]
        info = REGISTRY.by_message(obj)
        old = self.nodes.get(meta.uid)
        node = GraphNode(
            meta.uid,
            info,
            meta.namespace,
            meta.name,
            list(meta.owner_references),
            tuple(meta.finalizers),
            meta.HasField("deletion_timestamp"),
        )
        self.nodes[meta.uid] = node
        old_owners = {r.uid for r in old.owners} if old is not None else set()
        new_owners = {r.uid for r in node.owners}
        for uid in old_owners - new_owners:
            self.dependents.get(uid, set()).discard(meta.uid)
            self._recheck_owner(uid)
        for uid in new_owners:
            self.dependents.setdefault(uid, set()).add(meta.uid)
        if node.owners or (node.deleting and {ORPHAN, FOREGROUND} & set(node.finalizers)):
            self.enqueue(meta.uid)

    def _gone(self, obj: Message) -> None:
        meta = obj.metadata  # type: ignore[attr-defined]
        node = self.nodes.pop(meta.uid, None)
        owners = node.owners if node is not None else list(meta.owner_references)
        for ref in owners:
            self.dependents.get(ref.uid, set()).discard(meta.uid)
            self._recheck_owner(ref.uid)
        for uid in self.dependents.get(meta.uid, set()):
            self.enqueue(uid)

    def _recheck_owner(self, uid: str) -> None:
        owner = self.nodes.get(uid)
        if owner is not None and owner.deleting and FOREGROUND in owner.finalizers:
            self.enqueue(uid)

    # ------------------------------------------------------------------ processing

    async def sync(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        if node.deleting and ORPHAN in node.finalizers:
            await self._orphan_dependents(node)
            return
        if node.deleting and FOREGROUND in node.finalizers:
            await self._delete_dependents_foreground(node)
            return
        if node.owners:
            await self._check_owners(node)

    async def _owner_state(self, node: GraphNode, ref: meta_pb2.OwnerReference) -> str:
        """solid, waiting (being deleted in the foreground) or dangling."""
        owner = self.nodes.get(ref.uid)
        if owner is not None:
            return "waiting" if owner.deleting and FOREGROUND in owner.finalizers else "solid"
        try:
            info = REGISTRY.by_gvk(ref.api_version, ref.kind)
        except UnknownKindError:
            return "dangling"
        try:
            live = await self.client.get(info, ref.name, node.namespace if info.namespaced else "")
        except NotFoundError:
            return "dangling"
        meta = live.metadata  # type: ignore[attr-defined]
        if meta.uid != ref.uid:
            return "dangling"
        if meta.HasField("deletion_timestamp") and FOREGROUND in meta.finalizers:
            return "waiting"
        return "solid"

    async def _check_owners(self, node: GraphNode) -> None:
        states = {ref.uid: await self._owner_state(node, ref) for ref in node.owners}
        solid = [u for u, s in states.items() if s == "solid"]
        dangling = [u for u, s in states.items() if s == "dangling"]
        waiting = [u for u, s in states.items() if s == "waiting"]
        if solid:
            if dangling:
                await self._remove_owner_refs(node, set(dangling))
            return
        if node.deleting and not waiting:
            return  # already being deleted; nothing to add
        policy = "Foreground" if waiting and self.dependents.get(node.uid) else "Background"
        await self._delete(node, policy)

    async def _delete(self, node: GraphNode, policy: str) -> None:
        try:
            await self.client.delete(
                node.info, node.name, node.namespace, propagation_policy=policy, uid=node.uid
            )
        except (NotFoundError, ConflictError):
            return
        self.log.info("deleted dependent", kind=node.info.kind, object=f"{node.namespace}/{node.name}")

    async def _remove_owner_refs(self, node: GraphNode, uids: set[str]) -> None:
        for _ in range(5):
            try:
                obj = await self.client.get(node.info, node.name, node.namespace)
            except NotFoundError:
                return
            meta = obj.metadata  # type: ignore[attr-defined]
            if meta.uid != node.uid:
                return
            kept = [r for r in meta.owner_references if r.uid not in uids]
            if len(kept) == len(meta.owner_references):
                return
            del meta.owner_references[:]
            meta.owner_references.extend(kept)
            try:
                await self.client.update(obj)
                return
            except ConflictError:
                continue
        raise ConflictError(f"{node.name} kept changing", grpc.StatusCode.ABORTED)

    async def _remove_finalizer(self, node: GraphNode, finalizer: str) -> None:
        for _ in range(5):
            try:
                obj = await self.client.get(node.info, node.name, node.namespace)
            except NotFoundError:
                return
            meta = obj.metadata  # type: ignore[attr-defined]
            if meta.uid != node.uid or finalizer not in meta.finalizers:
                return
            kept = [f for f in meta.finalizers if f != finalizer]
            del meta.finalizers[:]
            meta.finalizers.extend(kept)
            try:
                await self.client.update(obj)
                return
            except ConflictError:
                continue
        raise ConflictError(f"{node.name} kept changing", grpc.StatusCode.ABORTED)

    async def _orphan_dependents(self, node: GraphNode) -> None:
        for uid in list(self.dependents.get(node.uid, set())):
            dependent = self.nodes.get(uid)
            if dependent is not None:
                await self._remove_owner_refs(dependent, {node.uid})
        await self._remove_finalizer(node, ORPHAN)

    async def _delete_dependents_foreground(self, node: GraphNode) -> None:
        blocking = 0
        for uid in list(self.dependents.get(node.uid, set())):
            dependent = self.nodes.get(uid)
            if dependent is None:
                continue
            ref = next((r for r in dependent.owners if r.uid == node.uid), None)
            if ref is not None and ref.HasField("block_owner_deletion") and ref.block_owner_deletion:
                blocking += 1
            if not dependent.deleting:
                policy = "Foreground" if self.dependents.get(uid) else "Background"
                await self._delete(dependent, policy)
        if blocking == 0:
            await self._remove_finalizer(node, FOREGROUND)
