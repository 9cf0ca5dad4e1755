"""Static pods: manifests in a folder (--pod-manifest-path) that the kubelet runs without
the apiserver, as Kubernetes runs its control plane. Each gets a uid derived from its content
and the node (so a restart finds the same pod, and an edit makes a new one), the name
`<name>-<node>`, and a mirror pod in the API (annotation kubernetes.io/config.mirror) so
users see it; deleting the mirror pod does not stop the static pod (it is recreated), removing
the manifest does."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pinnace.api.core.v1 import core_pb2
from services.machinery.logs import get_logger
from services.machinery.manifests import ManifestSourceError, load, read_sources

log = get_logger(__name__)

CONFIG_SOURCE = "kubernetes.io/config.source"
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_MIRROR = "kubernetes.io/config.mirror"


def is_mirror(pod: core_pb2.Pod) -> bool:
    return CONFIG_MIRROR in pod.metadata.annotations


def read_static_pods(folder: Path, node_name: str) -> dict[str, core_pb2.Pod]:
    """{uid: pod} of every Pod manifest in the folder; bad files are logged and skipped."""
    pods: dict[str, core_pb2.Pod] = {}
    if not folder.is_dir():
        return pods
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            decoded = [d for source in read_sources([str(path)]) for d in load(source)]
        except (ManifestSourceError, OSError, UnicodeDecodeError) as exc:
            log.warning("static pod manifest skipped", file=str(path), error=str(exc))
            continue
        for item in decoded:
            if not isinstance(item.obj, core_pb2.Pod):
                log.warning("static pod manifest holds a non-Pod object", file=str(path), kind=item.info.kind)
                continue
            pod = item.obj
            digest = hashlib.sha256(
                node_name.encode() + b"\0" + pod.SerializeToString(deterministic=True)
            ).hexdigest()
            uid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
            pod.metadata.name = f"{pod.metadata.name}-{node_name}"
            pod.metadata.uid = uid
            pod.metadata.annotations[CONFIG_SOURCE] = "file"
            pod.metadata.annotations[CONFIG_HASH] = uid
            pod.spec.node_name = node_name
            pods[uid] = pod
    return pods


def mirror_of(static: core_pb2.Pod) -> core_pb2.Pod:
    mirror = core_pb2.Pod()
    mirror.CopyFrom(static)
    mirror.metadata.ClearField("uid")
    mirror.metadata.annotations[CONFIG_MIRROR] = static.metadata.uid
    mirror.ClearField("status")
    return mirror
