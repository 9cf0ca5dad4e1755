"""The Node authoriser: a kubelet (system:node:<name> in system:nodes) may read only the pods
bound to its node and the secrets, configmaps, PVCs and PVs those pods use, request tokens
only for the service accounts those pods run as, and write only its own Node, its Lease, and
its pods' status (DESIGN.md, issue 10). Anything else it asks for is
left to the next mode (RBAC)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.apiserver.auth.attributes import RequestAttributes
from services.apiserver.auth.authz import Decision
from services.machinery import fields

CacheReader = Callable[[str], Iterable[Message]]
_READ = ("get", "list", "watch")
_WRITE = ("create", "update", "patch")
_PROXY_SUBRESOURCES = ("proxy", "stats", "log", "metrics", "exec", "attach", "portforward")


def pod_references(pod: core_pb2.Pod) -> dict[str, set[str]]:
    """Names of the secrets, configmaps and claims a pod uses (volumes, env, envFrom, pull secrets)."""
    refs: dict[str, set[str]] = {"secrets": set(), "configmaps": set(), "persistentvolumeclaims": set()}
    for volume in pod.spec.volumes:
        if volume.HasField("secret"):
            refs["secrets"].add(volume.secret.secret_name)
        if volume.HasField("config_map"):
            refs["configmaps"].add(volume.config_map.name)
        for projection in volume.projected.sources:
            if projection.HasField("secret"):
                refs["secrets"].add(projection.secret.name)
            if projection.HasField("config_map"):
                refs["configmaps"].add(projection.config_map.name)
        if volume.HasField("persistent_volume_claim"):
            refs["persistentvolumeclaims"].add(volume.persistent_volume_claim.claim_name)
    for container in (*pod.spec.init_containers, *pod.spec.containers):
        for env in container.env:
            if env.value_from.HasField("secret_key_ref"):
                refs["secrets"].add(env.value_from.secret_key_ref.name)
            if env.value_from.HasField("config_map_key_ref"):
                refs["configmaps"].add(env.value_from.config_map_key_ref.name)
        for source in container.env_from:
            if source.HasField("secret_ref"):
                refs["secrets"].add(source.secret_ref.name)
            if source.HasField("config_map_ref"):
                refs["configmaps"].add(source.config_map_ref.name)
    refs["secrets"] |= {s.name for s in pod.spec.image_pull_secrets}
    return refs


class NodeAuthorizer:
    name = "Node"

    def __init__(self, read: CacheReader) -> None:
        self.read = read

    def _pods(self, node: str) -> list[core_pb2.Pod]:
        return [p for p in self.read("pods") if isinstance(p, core_pb2.Pod) and p.spec.node_name == node]

    def authorize(self, attrs: RequestAttributes) -> Decision:
        node = attrs.user.node_name()
        if node is None:
            return Decision.NO_OPINION
        resource, verb = attrs.resource, attrs.verb
        if resource in ("nodes", "pods") and attrs.subresource in _PROXY_SUBRESOURCES:
            # Reaching kubelets through the apiserver is not a kubelet's business: RBAC decides.
            return Decision.NO_OPINION
        if resource == "nodes":
            if verb in _READ:
                return Decision.ALLOW
            if verb in _WRITE and (attrs.name == node or (verb == "create" and not attrs.name)):
                return Decision.ALLOW
            return Decision.DENY
        if resource == "leases":
            ok = attrs.namespace == "kube-node-lease" and (attrs.name == node or verb == "create")
            return Decision.ALLOW if ok and verb in (*_READ, *_WRITE, "delete") else Decision.DENY
        if resource == "pods":
            return self._pods_decision(attrs, node)
        if resource == "serviceaccounts":
            # Tokens only (bound to one of its pods: NodeRestriction checks the binding), for
            # the accounts its pods run as.
            if verb != "create" or attrs.subresource != "token":
                return Decision.DENY
            used = any(
                p.metadata.namespace == attrs.namespace and p.spec.service_account_name == attrs.name
                for p in self._pods(node)
            )
            return Decision.ALLOW if used else Decision.DENY
        if resource in ("secrets", "configmaps", "persistentvolumeclaims"):
            if verb != "get":
                return Decision.DENY
            used = any(
                attrs.name in pod_references(p)[resource]
                for p in self._pods(node)
                if p.metadata.namespace == attrs.namespace
            )
            return Decision.ALLOW if used else Decision.DENY
        if resource == "persistentvolumes":
            if verb != "get":
                return Decision.DENY
            claims = {
                (p.metadata.namespace, c)
                for p in self._pods(node)
                for c in pod_references(p)["persistentvolumeclaims"]
            }
            bound = any(
                isinstance(c, core_pb2.PersistentVolumeClaim)
                and (c.metadata.namespace, c.metadata.name) in claims
                and c.spec.volume_name == attrs.name
                for c in self.read("persistentvolumeclaims")
            )
            return Decision.ALLOW if bound else Decision.DENY
        if resource == "events" and verb in (*_WRITE, *_READ):
            return Decision.ALLOW
        if resource in ("services", "endpoints") and verb in _READ:
            return Decision.ALLOW
        return Decision.NO_OPINION

    def _pods_decision(self, attrs: RequestAttributes, node: str) -> Decision:
        verb = attrs.verb
        if verb in ("list", "watch"):
            try:
                selector = fields.parse(attrs.field_selector)
            except fields.FieldSelectorError:
                return Decision.DENY
            return Decision.ALLOW if selector.exact_value("spec.nodeName") == node else Decision.DENY
        if verb == "create" and not attrs.subresource:
            # Mirror pods of static pods; NodeRestriction admission checks they are bound here.
            return Decision.ALLOW
        mine = any(
            p.metadata.namespace == attrs.namespace and p.metadata.name == attrs.name
            for p in self._pods(node)
        )
        if not mine:
            return Decision.DENY
        if verb in {"get", "delete"}:
            return Decision.ALLOW
        if verb in ("update", "patch") and attrs.subresource == "status":
            return Decision.ALLOW
        return Decision.DENY
