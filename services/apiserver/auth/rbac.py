"""RBAC: Roles and ClusterRoles grant rules; RoleBindings (in one namespace) and
ClusterRoleBindings (everywhere) grant them to users, groups and service accounts.

Rules are read from the apiserver's own watch caches, so a decision is a walk over local
dictionaries and a changed binding applies to the very next request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from google.protobuf.message import Message

from pinnace.api.rbac.v1 import rbac_pb2
from services.apiserver.auth.attributes import RequestAttributes
from services.apiserver.auth.authz import Decision
from services.apiserver.auth.user import SYSTEM_MASTERS, UserInfo

# Returns every cached object of a resource ("roles", "clusterroles", ...).
CacheReader = Callable[[str], Iterable[Message]]


def subject_matches(subject: rbac_pb2.Subject, user: UserInfo, binding_namespace: str) -> bool:
    if subject.kind == "User":
        return subject.name == user.name
    if subject.kind == "Group":
        return subject.name in user.groups
    if subject.kind == "ServiceAccount":
        namespace = subject.namespace or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{subject.name}"
    return False


def rule_allows(rule: rbac_pb2.PolicyRule, attrs: RequestAttributes) -> bool:
    if "*" not in rule.verbs and attrs.verb not in rule.verbs:
        return False
    if "*" not in rule.api_groups and attrs.api_group not in rule.api_groups:
        return False
    wanted = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resources = set(rule.resources)
    if not ({"*", wanted} & resources or (attrs.subresource and f"*/{attrs.subresource}" in resources)):
        return False
    return not rule.resource_names or attrs.name in rule.resource_names


class RBACAuthorizer:
    name = "RBAC"

    def __init__(self, read: CacheReader) -> None:
        self.read = read

    def _rules(self, kind: str, namespace: str, name: str) -> list[rbac_pb2.PolicyRule]:
        for role in self.read("clusterroles" if kind == "ClusterRole" else "roles"):
            meta = role.metadata  # type: ignore[attr-defined]
            if meta.name == name and (kind == "ClusterRole" or meta.namespace == namespace):
                return list(role.rules)  # type: ignore[attr-defined]
        return []

    def authorize(self, attrs: RequestAttributes) -> Decision:
        if SYSTEM_MASTERS in attrs.user.groups:
            return Decision.ALLOW
        for binding in self.read("clusterrolebindings"):
            assert isinstance(binding, rbac_pb2.ClusterRoleBinding)
            if any(subject_matches(s, attrs.user, "") for s in binding.subjects) and any(
                rule_allows(r, attrs) for r in self._rules("ClusterRole", "", binding.role_ref.name)
            ):
                return Decision.ALLOW
        if attrs.namespace:
            for binding in self.read("rolebindings"):
                assert isinstance(binding, rbac_pb2.RoleBinding)
                if binding.metadata.namespace != attrs.namespace:
                    continue
                if not any(subject_matches(s, attrs.user, attrs.namespace) for s in binding.subjects):
                    continue
                rules = self._rules(binding.role_ref.kind, attrs.namespace, binding.role_ref.name)
                if any(rule_allows(r, attrs) for r in rules):
                    return Decision.ALLOW
        return Decision.NO_OPINION
