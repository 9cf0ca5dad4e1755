"""The scheduler's cache: a NodeInfo per node with the pods bound (or assumed) to it, plus the
cluster-wide indexes the cycle needs (pods by label, pods with affinity terms, claims in use,
how many nodes hold each image, nominated pods).

Assume-then-bind: a pod the cycle placed is added here at once as "assumed", so the next cycle
sees its resources on the node while the binding is still in flight. The informer's update of
the bound pod confirms it; a failed binding forgets it; an assumed pod whose binding finished
but whose confirmation never came expires after a TTL (the watch may have missed it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from pinnace.api.core.v1 import core_pb2
from pinnace.api.policy.v1 import policy_pb2
from services.machinery import labels
from services.scheduler.nodeinfo import NodeInfo, next_generation
from services.scheduler.podinfo import AffinityTerm, PodInfo

ASSUMED_TTL_SECONDS = 30.0


class Cache:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.nodes: dict[str, NodeInfo] = {}
        # Nodes that exist as Node objects, in a stable order the cycle walks round-robin.
        self.node_list: list[NodeInfo] = []
        self.pods: dict[str, PodInfo] = {}
        self.pod_node: dict[str, str] = {}
        # key -> deadline (None while the binding is in flight).
        self.assumed: dict[str, float | None] = {}
        self.label_index: dict[tuple[str, str], set[str]] = {}
        self.key_index: dict[str, set[str]] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        # Required anti-affinity terms of placed pods, grouped by term: replicas share theirs,
        # so the symmetric check matches each distinct term once.
        self.anti_terms: dict[AffinityTerm, dict[str, PodInfo]] = {}
        # Pods whose terms score other pods (preferred terms, required affinity).
        self.pods_scoring_others: dict[str, PodInfo] = {}
        self.claims: dict[tuple[str, str], set[str]] = {}
        self.image_nodes: dict[str, int] = {}
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.nominated: dict[str, dict[str, PodInfo]] = {}
        self.nominated_node: dict[str, str] = {}
        self.prefer_no_schedule_nodes: set[str] = set()
        # Other objects the filters and scores read.
        self.pvcs: dict[tuple[str, str], core_pb2.PersistentVolumeClaim] = {}
        self.pvs: dict[str, core_pb2.PersistentVolume] = {}
        # Selectors of the services and controllers that spread their pods: key -> (namespace, selector).
        self.services: dict[str, tuple[str, labels.Selector]] = {}
        self.controllers: dict[str, tuple[str, labels.Selector]] = {}
        # PodDisruptionBudgets (key -> budget and its parsed selector), read by preemption.
        self.budgets: dict[str, tuple[policy_pb2.PodDisruptionBudget, labels.Selector]] = {}
        # Changes that can alter every node's score (node count, image spread).
        self.epoch = next_generation()

    # ------------------------------------------------------------------ nodes

    def add_node(self, node: core_pb2.Node) -> NodeInfo:
        name = node.metadata.name
        info = self.nodes.get(name)
        if info is None:
            info = NodeInfo(name)
            self.nodes[name] = info
        fresh = info.node is None
        old_images = set(info.images)
        info.set_node(node)
        if any(t.effect == "PreferNoSchedule" for t in info.taints):
            self.prefer_no_schedule_nodes.add(name)
        else:
            self.prefer_no_schedule_nodes.discard(name)
        if fresh:
            self.node_list.append(info)
            self.epoch = next_generation()
        if old_images != set(info.images) or fresh:
            for image in old_images if not fresh else ():
                self._count_image(image, -1)
            for image in info.images:
                self._count_image(image, 1)
            self.epoch = next_generation()
        return info

    def _count_image(self, image: str, delta: int) -> None:
        count = self.image_nodes.get(image, 0) + delta
        if count > 0:
            self.image_nodes[image] = count
        else:
            self.image_nodes.pop(image, None)

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None or info.node is None:
            return
        for image in info.images:
            self._count_image(image, -1)
        self.node_list = [n for n in self.node_list if n.name != name]
        self.prefer_no_schedule_nodes.discard(name)
        info.node = None
        info.generation = next_generation()
        if not info.pods:
            del self.nodes[name]
        self.epoch = next_generation()

    def node_count(self) -> int:
        return len(self.node_list)

    # ------------------------------------------------------------------ pods

    def _index(self, pod: PodInfo, add: bool) -> None:
        for item in pod.labels.items():
            keys = self.label_index.setdefault(item, set())
            by_key = self.key_index.setdefault(item[0], set())
            if add:
                keys.add(pod.key)
                by_key.add(pod.key)
            else:
                keys.discard(pod.key)
                by_key.discard(pod.key)
                if not keys:
                    del self.label_index[item]
                if not by_key:
                    del self.key_index[item[0]]
        if pod.has_affinity:
            if add:
                self.pods_with_affinity[pod.key] = pod
            else:
                self.pods_with_affinity.pop(pod.key, None)
            for term in pod.required_anti_affinity:
                holders = self.anti_terms.setdefault(term, {})
                if add:
                    holders[pod.key] = pod
                else:
                    holders.pop(pod.key, None)
                    if not holders:
                        del self.anti_terms[term]
            if pod.preferred_affinity or pod.preferred_anti_affinity or pod.required_affinity:
                if add:
                    self.pods_scoring_others[pod.key] = pod
                else:
                    self.pods_scoring_others.pop(pod.key, None)
        for claim in pod.claims:
            users = self.claims.setdefault((pod.namespace, claim), set())
            if add:
                users.add(pod.key)
            else:
                users.discard(pod.key)
                if not users:
                    del self.claims[(pod.namespace, claim)]

    def _place(self, pod: PodInfo, node_name: str) -> None:
        info = self.nodes.get(node_name)
        if info is None:
            info = self.nodes[node_name] = NodeInfo(node_name)
        info.add_pod(pod)
        self.pods[pod.key] = pod
        self.pod_node[pod.key] = node_name
        self._index(pod, True)

    def _unplace(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        node_name = self.pod_node.pop(key, None)
        if pod is None or node_name is None:
            return None
        info = self.nodes.get(node_name)
        if info is not None:
            info.remove_pod(key)
            if info.node is None and not info.pods:
                del self.nodes[node_name]
        self._index(pod, False)
        return pod

    def add_pod(self, pod: PodInfo) -> None:
        """An assigned pod from the informer (new, updated, or the confirmation of an assumed one)."""
        self.assumed.pop(pod.key, None)
        self._unplace(pod.key)
        self._place(pod, pod.node_name)
        self.remove_nominated(pod.key)

    def confirm(self, previous: core_pb2.Pod, pod: core_pb2.Pod) -> bool:
        """The informer's update of a pod this cache assumed, when it is the binding write and
        nothing else: keep the PodInfo parsed for the cycle (only the node and the object
        change), so a bound pod is not parsed twice and its node keeps its generation (nothing
        the cycle reads of it changed). False: the caller adds the pod the ordinary way.

        The binding is the only write that sets spec.nodeName and it changes nothing the cache
        reads besides the node; `previous` being the very object the PodInfo was parsed from
        proves no other write came between. Labels, deletion and start time are checked too,
        for a relist that folds several writes into one update."""
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        info = self.pods.get(key)
        if (
            key not in self.assumed
            or info is None
            or info.pod is not previous
            or info.uid != pod.metadata.uid
            or self.pod_node.get(key) != pod.spec.node_name
            or pod.metadata.HasField("deletion_timestamp")
            or pod.status.HasField("start_time")
            or info.labels != dict(pod.metadata.labels)
        ):
            return False
        del self.assumed[key]
        info.pod, info.node_name = pod, pod.spec.node_name
        self.remove_nominated(key)
        return True

    def remove_pod(self, key: str) -> PodInfo | None:
        self.assumed.pop(key, None)
        self.remove_nominated(key)
        return self._unplace(key)

    def assume(self, pod: PodInfo, node_name: str) -> None:
        self._unplace(pod.key)
        self._place(pod, node_name)
        self.assumed[pod.key] = None
        self.remove_nominated(pod.key)

    def finish_binding(self, key: str) -> None:
        if key in self.assumed:
            self.assumed[key] = self.clock() + ASSUMED_TTL_SECONDS

    def forget(self, key: str) -> None:
        if self.assumed.pop(key, "absent") != "absent":
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    def cleanup_expired(self) -> list[str]:
        now = self.clock()
        expired = [k for k, deadline in self.assumed.items() if deadline is not None and deadline < now]
        for key in expired:
            self.forget(key)
        return expired

    # ------------------------------------------------------------------ nominated pods

    def add_nominated(self, pod: PodInfo, node_name: str) -> None:
        self.remove_nominated(pod.key)
        self.nominated.setdefault(node_name, {})[pod.key] = pod
        self.nominated_node[pod.key] = node_name

    def remove_nominated(self, key: str) -> None:
        node_name = self.nominated_node.pop(key, None)
        if node_name is not None:
            pods = self.nominated.get(node_name, {})
            pods.pop(key, None)
            if not pods:
                self.nominated.pop(node_name, None)

    # ------------------------------------------------------------------ queries

    def matching_pods(self, selector: labels.Selector) -> Iterator[PodInfo]:
        """Pods whose labels match; candidates come from the label index of the most selective
        equality requirement, so a `app=web` term costs the web pods, not every pod."""
        if selector.nothing:
            return
        candidates: Iterable[str] | None = None
        best = -1
        for req in selector.requirements:
            if req.operator in (labels.Operator.EQUALS, labels.Operator.DOUBLE_EQUALS, labels.Operator.IN):
                keys: set[str] = set()
                for value in req.values:
                    keys |= self.label_index.get((req.key, value), set())
            elif req.operator is labels.Operator.EXISTS:
                keys = self.key_index.get(req.key, set())
            else:
                continue
            if best < 0 or len(keys) < best:
                candidates, best = keys, len(keys)
        for key in list(candidates if candidates is not None else self.pods):
            pod = self.pods.get(key)
            if pod is not None and selector.matches(pod.labels):
                yield pod

    def pods_matching_term(self, term: AffinityTerm) -> Iterator[PodInfo]:
        for pod in self.matching_pods(term.selector):
            if term.matches_pod(pod, self.namespace_labels):
                yield pod

    def node_of(self, key: str) -> NodeInfo | None:
        name = self.pod_node.get(key)
        return self.nodes.get(name) if name is not None else None
