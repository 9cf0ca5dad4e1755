"""How a pod and its containers are named in the runtime. Everything the kubelet needs to
find its pods again after a restart lives in CRI labels and annotations (the keys Kubernetes
uses), so the kubelet keeps no state of its own (DESIGN.md principle 3)."""

from __future__ import annotations

import hashlib

from pinnace.api.core.v1 import core_pb2

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
# Set on every object the kubelet creates, so it never touches what others put in the runtime.
MANAGED_BY = "io.pinnace.kubelet.managed"

RESTART_COUNT = "io.kubernetes.container.restartCount"
CONTAINER_HASH = "io.kubernetes.container.hash"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
TERMINATION_MESSAGE_POLICY = "io.kubernetes.container.terminationMessagePolicy"
INIT_CONTAINER = "io.pinnace.kubelet.init"
POD_GRACE = "io.kubernetes.pod.terminationGracePeriod"
CONTAINER_GRACE = "io.kubernetes.container.terminationGracePeriod"

# Labels the runtime keeps for itself (the shim refuses them) and must not be copied.
_RESERVED_PREFIXES = ("io.pinnace.cri.",)


def pod_labels(pod: core_pb2.Pod) -> dict[str, str]:
    """Sandbox labels: the pod's own labels plus its identity."""
    labels = {k: v for k, v in pod.metadata.labels.items() if not k.startswith(_RESERVED_PREFIXES)}
    labels.update(
        {
            POD_NAME: pod.metadata.name,
            POD_NAMESPACE: pod.metadata.namespace,
            POD_UID: pod.metadata.uid,
            MANAGED_BY: "true",
        }
    )
    return labels


def container_labels(pod: core_pb2.Pod, name: str) -> dict[str, str]:
    return {
        POD_NAME: pod.metadata.name,
        POD_NAMESPACE: pod.metadata.namespace,
        POD_UID: pod.metadata.uid,
        CONTAINER_NAME: name,
        MANAGED_BY: "true",
    }


def container_hash(container: core_pb2.Container) -> str:
    """Changes when the container's spec changes (an image update): the container is replaced."""
    return hashlib.sha256(container.SerializeToString(deterministic=True)).hexdigest()[:16]
