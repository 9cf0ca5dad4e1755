"""NodeRestriction: what a kubelet writes must concern its own node. The Node authoriser
decides by name; this plugin sees the object: a kubelet may create only mirror pods bound to
itself, and may not give its Node labels reserved for the cluster's operators."""

from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.admission.chain import AdmissionPlugin, Attributes, Operation

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
RESTRICTED_LABEL_PREFIX = "node-restriction.kubernetes.io/"


class NodeRestriction(AdmissionPlugin):
    name = "NodeRestriction"

    async def validate(self, attrs: Attributes) -> None:
        node = attrs.user.node_name() if attrs.user is not None else None
        if node is None or attrs.operation not in (Operation.CREATE, Operation.UPDATE):
            return
        obj = attrs.obj
        if isinstance(obj, core_pb2.Pod) and attrs.operation is Operation.CREATE:
            if MIRROR_ANNOTATION not in obj.metadata.annotations:
                raise errors.forbidden(attrs.info, attrs.name, f"node {node!r} can only create mirror pods")
            if obj.spec.node_name != node:
                raise errors.forbidden(
                    attrs.info,
                    attrs.name,
                    f"node {node!r} can only create pods with spec.nodeName set to itself",
                )
            if obj.spec.service_account_name not in ("", "default") or any(
                v.HasField("secret") or v.HasField("config_map") or v.HasField("persistent_volume_claim")
                for v in obj.spec.volumes
            ):
                raise errors.forbidden(
                    attrs.info,
                    attrs.name,
                    "mirror pods may not reference service accounts, secrets, configmaps or "
                    "persistent volume claims",
                )
        if isinstance(obj, core_pb2.Node):
            if obj.metadata.name != node:
                raise errors.forbidden(
                    attrs.info, attrs.name, f"node {node!r} cannot modify node {obj.metadata.name!r}"
                )
            old_labels = attrs.old.metadata.labels if isinstance(attrs.old, core_pb2.Node) else {}
            for key, value in obj.metadata.labels.items():
                if key.startswith(RESTRICTED_LABEL_PREFIX) and old_labels.get(key) != value:
                    raise errors.forbidden(
                        attrs.info, attrs.name, f"node {node!r} is not allowed to modify labels: {key}"
                    )
