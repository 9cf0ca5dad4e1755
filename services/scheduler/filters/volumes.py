"""Volume filters: the pod's claims exist and are bound (VolumeBinding's pre-filter), a bound
PV's node affinity admits the node (VolumeNodeAffinity), and a ReadWriteOncePod claim is used
by one pod at a time (DiskConflict).

The notes' NoDiskConflict compared GCE PD, EBS, RBD and iSCSI volumes; the object model has
none of those sources, so the exclusive-use rule that remains is Kubernetes' ReadWriteOncePod.
"""

from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.scheduler.cache import Cache
from services.scheduler.filters.base import CycleState, Filter, Reasons
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import NodeSelectorTerm, PodInfo, node_selector_terms, terms_match

RWOP = "ReadWriteOncePod"


def bound_volumes(state: CycleState) -> tuple[str | None, list[core_pb2.PersistentVolume]]:
    """The PVs behind the pod's claims, or the message that fails the pod everywhere."""
    cached = state.data.get("volumes")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    pod, cache = state.pod, state.cache
    volumes: list[core_pb2.PersistentVolume] = []
    problem: str | None = None
    for claim in pod.claims:
        pvc = cache.pvcs.get((pod.namespace, claim))
        if pvc is None:
            problem = f'persistentvolumeclaim "{claim}" not found'
            break
        if pvc.metadata.HasField("deletion_timestamp"):
            problem = f'persistentvolumeclaim "{claim}" is being deleted'
            break
        pv = cache.pvs.get(pvc.spec.volume_name) if pvc.spec.volume_name else None
        if pv is None:
            problem = "pod has unbound immediate PersistentVolumeClaims"
            break
        volumes.append(pv)
    state.data["volumes"] = (problem, volumes)
    return problem, volumes


class VolumeNodeAffinity(Filter):
    name = "VolumeNodeAffinity"
    node_local = False
    REASON: Reasons = ("node(s) had volume node affinity conflict",)

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(pod.claims)

    def prefilter(self, state: CycleState) -> str | None:
        problem, volumes = bound_volumes(state)
        terms: list[tuple[NodeSelectorTerm, ...]] = [
            node_selector_terms(pv.spec.node_affinity.required)
            for pv in volumes
            if pv.spec.HasField("node_affinity") and pv.spec.node_affinity.HasField("required")
        ]
        state.data["volume_terms"] = terms
        return problem

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        for terms in state.data["volume_terms"]:
            if not terms_match(terms, node.labels, node.name):
                return self.REASON
        return None


class DiskConflict(Filter):
    name = "DiskConflict"
    node_local = False
    resolvable = True
    REASON: Reasons = (
        "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode",
    )

    def applies(self, pod: PodInfo, cache: Cache) -> bool:
        return bool(pod.claims)

    def prefilter(self, state: CycleState) -> str | None:
        pod, cache = state.pod, state.cache
        in_use: set[str] = set()
        for claim in pod.claims:
            pvc = cache.pvcs.get((pod.namespace, claim))
            if pvc is None or RWOP not in pvc.spec.access_modes:
                continue
            for user in cache.claims.get((pod.namespace, claim), ()):
                if user != pod.key and (node := cache.pod_node.get(user)):
                    in_use.add(node)
        state.data["rwop_nodes"] = in_use
        return None

    def filter(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Reasons | None:
        # Kubernetes refuses every node while another pod holds the claim; evicting that pod is
        # what preemption can do, on the node where it runs.
        return self.REASON if state.data["rwop_nodes"] else None
