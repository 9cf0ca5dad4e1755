"""Equivalence classes and score caching (Borg, EuroSys 2015, section 3.4).

Pods of one template (same owner, namespace, labels and spec) are interchangeable to the
filters and the node-local scores, so their results are memoised per class and node. An
entry is valid while the node's generation is the one it was computed at: any change to the
node or its pods invalidates exactly that node's entries, so a replica set of a thousand pods
filters each node once, then re-examines only the node the previous replica landed on.

The filter verdict and the score live in one entry but carry their own generations, so each
technique can be switched off alone (the benchmark's ablation).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from services.scheduler.filters.base import Reasons
from services.scheduler.podinfo import PodInfo

MAX_CLASSES = 1024


def class_key(pod: PodInfo) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{pod.namespace}\x00{pod.owner_uid}\x00".encode())
    for key, value in sorted(pod.labels.items()):
        digest.update(f"{key}={value}\x00".encode())
    spec = pod.pod.spec
    if spec.node_name:
        spec = type(spec)()
        spec.CopyFrom(pod.pod.spec)
        spec.node_name = ""
    digest.update(spec.SerializeToString(deterministic=True))
    return digest.digest()


class Entry:
    __slots__ = ("filter_generation", "reasons", "resolvable", "score", "score_epoch", "score_generation")

    def __init__(self) -> None:
        self.filter_generation = 0
        self.reasons: Reasons | None = None
        self.resolvable = False
        self.score_generation = 0
        self.score_epoch = 0
        self.score = 0


class EquivalenceCache:
    """class key -> node name -> Entry, least recently used classes dropped beyond MAX_CLASSES."""

    def __init__(self, max_classes: int = MAX_CLASSES) -> None:
        self.max_classes = max_classes
        self.classes: OrderedDict[bytes, dict[str, Entry]] = OrderedDict()
        self._keys: dict[str, tuple[str, bytes]] = {}

    def key_of(self, pod: PodInfo) -> bytes:
        """The pod's class, remembered by uid+resourceVersion (a pod is scheduled many times)."""
        version = pod.pod.metadata.resource_version
        known = self._keys.get(pod.uid)
        if known is not None and known[0] == version:
            return known[1]
        key = class_key(pod)
        if len(self._keys) > 100_000:
            self._keys.clear()
        self._keys[pod.uid] = (version, key)
        return key

    def forget_pod(self, uid: str) -> None:
        self._keys.pop(uid, None)

    def entries(self, key: bytes) -> dict[str, Entry]:
        memo = self.classes.get(key)
        if memo is None:
            memo = self.classes[key] = {}
            if len(self.classes) > self.max_classes:
                self.classes.popitem(last=False)
        else:
            self.classes.move_to_end(key)
        return memo

    def remove_node(self, name: str) -> None:
        for memo in self.classes.values():
            memo.pop(name, None)
