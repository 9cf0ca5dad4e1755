"""NodeRestriction: what a kubelet writes must concern its own node. The Node authoriser
decides by name; this plugin sees the object: a kubelet may create only mirror pods bound to
itself, may not give its Node labels reserved for the cluster's operators, and may request
service-account tokens only bound to a pod (by uid) that runs on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pinnace.api.authentication.v1 import authentication_pb2
from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.admission.chain import AdmissionPlugin, Attributes, Operation

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
RESTRICTED_LABEL_PREFIX = "node-restriction.kubernetes.io/"


# (namespace, name) -> the pod, or None.
PodGetter = Callable[[str, str], Awaitable[core_pb2.Pod | None]]


class NodeRestriction(AdmissionPlugin):
    name = "NodeRestriction"

    def __init__(self, get_pod: PodGetter | None = None) -> None:
        self.get_pod = get_pod

    async def validate(self, attrs: Attributes) -> None:
        node = attrs.user.node_name() if attrs.user is not None else None
        if node is None or attrs.operation not in (Operation.CREATE, Operation.UPDATE):
            return
        obj = attrs.obj
        if isinstance(obj, authentication_pb2.TokenRequest) and attrs.subresource == "token":
            await self._token_request(attrs, node, obj)
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

    async def _token_request(
        self, attrs: Attributes, node: str, request: authentication_pb2.TokenRequest
    ) -> None:
        """Kubernetes' admitServiceAccount: a node's tokens are bound to one of its pods."""
        ref = request.spec.bound_object_ref
        if ref.api_version != "v1" or ref.kind != "Pod" or not ref.name:
            raise errors.forbidden(attrs.info, attrs.name, "node requested token not bound to a pod")
        if not ref.uid:
            raise errors.forbidden(
                attrs.info, attrs.name, "node requested token with a pod binding without a uid"
            )
        pod = await self.get_pod(attrs.namespace, ref.name) if self.get_pod is not None else None
        if pod is None:
            raise errors.APIError("NotFound", f'pods "{ref.name}" not found', kind="pods", name=ref.name)
        if ref.uid != pod.metadata.uid:
            raise errors.forbidden(
                attrs.info,
                attrs.name,
                f"the UID in the bound object reference ({ref.uid}) does not match the UID in record. "
                "The object might have been deleted and then recreated",
            )
        if pod.spec.node_name != node:
            raise errors.forbidden(
                attrs.info, attrs.name, "node requested token bound to a pod scheduled on a different node"
            )
