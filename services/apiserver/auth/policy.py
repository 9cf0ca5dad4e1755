"""The default RBAC policy every cluster starts with: Kubernetes' user-facing roles
(cluster-admin, admin, edit, view) and the roles of pinnace's own components, bound to the
identities the bootstrap certificates carry."""

from __future__ import annotations

from pinnace.api.rbac.v1 import rbac_pb2
from services.apiserver.auth.user import SYSTEM_MASTERS

ALL_VERBS = ["*"]
READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete"]
_WORKLOADS = [
    "pods",
    "pods/log",
    "pods/exec",
    "pods/portforward",
    "pods/attach",
    "pods/proxy",
    "services",
    "endpoints",
    "persistentvolumeclaims",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "replicationcontrollers",
    "replicationcontrollers/scale",
    "events",
]
_APPS = [
    "deployments",
    "deployments/scale",
    "replicasets",
    "replicasets/scale",
    "statefulsets",
    "statefulsets/scale",
    "daemonsets",
]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> rbac_pb2.PolicyRule:
    return rbac_pb2.PolicyRule(api_groups=groups, resources=resources, verbs=verbs)


def _role(name: str, *rules: rbac_pb2.PolicyRule) -> rbac_pb2.ClusterRole:
    role = rbac_pb2.ClusterRole(rules=list(rules))
    role.metadata.name = name
    role.metadata.labels["kubernetes.io/bootstrapping"] = "rbac-defaults"
    return role


def _binding(name: str, role: str, kind: str, subject: str) -> rbac_pb2.ClusterRoleBinding:
    binding = rbac_pb2.ClusterRoleBinding()
    binding.metadata.name = name
    binding.metadata.labels["kubernetes.io/bootstrapping"] = "rbac-defaults"
    binding.role_ref.api_group, binding.role_ref.kind, binding.role_ref.name = (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        role,
    )
    binding.subjects.add(kind=kind, name=subject, api_group="rbac.authorization.k8s.io")
    return binding


def default_cluster_roles() -> list[rbac_pb2.ClusterRole]:
    edit_rules = [
        _rule([""], _WORKLOADS, [*READ, *WRITE]),
        _rule(["apps"], _APPS, [*READ, *WRITE]),
        _rule(["batch"], ["jobs", "cronjobs"], [*READ, *WRITE]),
        _rule(["autoscaling"], ["horizontalpodautoscalers"], [*READ, *WRITE]),
        _rule(["networking.k8s.io"], ["ingresses"], [*READ, *WRITE]),
        _rule(["policy"], ["pods/eviction"], ["create"]),
        _rule([""], ["pods/eviction"], ["create"]),
        _rule(["policy"], ["poddisruptionbudgets"], [*READ, *WRITE]),
        _rule(["apps"], ["controllerrevisions"], READ),
    ]
    view_resources = [
        r
        for r in _WORKLOADS
        if r not in ("secrets", "pods/exec", "pods/attach", "pods/portforward", "pods/proxy")
    ]
    return [
        _role("cluster-admin", _rule(["*"], ["*"], ALL_VERBS)),
        _role(
            "admin",
            *edit_rules,
            _rule(["rbac.authorization.k8s.io"], ["roles", "rolebindings"], [*READ, *WRITE]),
            _rule([""], ["resourcequotas", "limitranges"], READ),
        ),
        _role("edit", *edit_rules),
        _role(
            "view",
            _rule([""], [*view_resources, "resourcequotas", "limitranges", "namespaces"], READ),
            _rule(["apps"], _APPS, READ),
            _rule(["batch"], ["jobs", "cronjobs"], READ),
            _rule(["autoscaling"], ["horizontalpodautoscalers"], READ),
            _rule(["policy"], ["poddisruptionbudgets"], READ),
            _rule(["apps"], ["controllerrevisions"], READ),
        ),
        _role(
            "system:kube-scheduler",
            _rule(
                [""],
                [
                    "pods",
                    "nodes",
                    "namespaces",
                    "services",
                    "replicationcontrollers",
                    "persistentvolumes",
                    "persistentvolumeclaims",
                ],
                READ,
            ),
            _rule(["apps"], ["replicasets", "statefulsets"], READ),
            _rule(["scheduling.k8s.io"], ["priorityclasses"], READ),
            _rule(["policy"], ["poddisruptionbudgets"], READ),
            _rule(["storage.k8s.io"], ["storageclasses"], READ),
            _rule([""], ["pods/binding", "bindings"], ["create"]),
            _rule([""], ["pods/status"], ["update", "patch"]),
            _rule([""], ["pods"], ["delete"]),
            _rule([""], ["events"], [*READ, *WRITE]),
            _rule(["coordination.k8s.io"], ["leases"], [*READ, *WRITE]),
        ),
        _role("system:kube-controller-manager", _rule(["*"], ["*"], ALL_VERBS)),
        _role(
            "system:node-proxier",
            _rule([""], ["services", "endpoints", "nodes"], READ),
            _rule([""], ["events"], ["create", "update", "patch"]),
        ),
        _role("system:node", _rule([""], ["nodes", "services", "endpoints"], READ)),
    ]


def default_cluster_role_bindings() -> list[rbac_pb2.ClusterRoleBinding]:
    return [
        _binding("cluster-admin", "cluster-admin", "Group", SYSTEM_MASTERS),
        _binding("system:kube-scheduler", "system:kube-scheduler", "User", "system:kube-scheduler"),
        _binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            "User",
            "system:kube-controller-manager",
        ),
        _binding("system:node-proxier", "system:node-proxier", "User", "system:kube-proxy"),
    ]
