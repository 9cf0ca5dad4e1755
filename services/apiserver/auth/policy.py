"""The default RBAC policy every cluster starts with: Kubernetes' user-facing roles
(cluster-admin, admin, edit, view) and the roles of pinnace's own components, bound to the
identities the bootstrap certificates carry."""

from __future__ import annotations

from pinnace.api.rbac.v1 import rbac_pb2
from services.apiserver.auth.user import ANONYMOUS, NODES_GROUP, SYSTEM_MASTERS

BOOTSTRAPPERS = "system:bootstrappers"
CLUSTER_INFO_ROLE = "kubeadm:bootstrap-signer-clusterinfo"
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
        # Kubernetes' role for full use of the kubelets' API through the apiserver (logs, exec,
        # stats of any node); bound to nobody by default.
        _role(
            "system:kubelet-api-admin",
            _rule([""], ["nodes"], [*READ, "proxy"]),
            _rule([""], ["nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"], ALL_VERBS),
        ),
        *_csr_roles(),
    ]


_CERTIFICATES = "certificates.k8s.io"
_CSR_ROLE = "system:certificates.k8s.io:certificatesigningrequests:"


def _csr_roles() -> list[rbac_pb2.ClusterRole]:
    """Kubernetes' TLS-bootstrap roles: request certificates, and be auto-approved for a new
    node's (nodeclient) or one's own node's (selfnodeclient) client certificate."""
    return [
        _role(
            "system:node-bootstrapper",
            _rule([_CERTIFICATES], ["certificatesigningrequests"], ["create", *READ]),
        ),
        _role(
            _CSR_ROLE + "nodeclient",
            _rule([_CERTIFICATES], ["certificatesigningrequests/nodeclient"], ["create"]),
        ),
        _role(
            _CSR_ROLE + "selfnodeclient",
            _rule([_CERTIFICATES], ["certificatesigningrequests/selfnodeclient"], ["create"]),
        ),
    ]


def _csr_bindings() -> list[rbac_pb2.ClusterRoleBinding]:
    """kubeadm's bindings: bootstrap tokens may request and get node client certificates;
    nodes may renew their own."""
    return [
        _binding("pinnace:kubelet-bootstrap", "system:node-bootstrapper", "Group", BOOTSTRAPPERS),
        _binding("pinnace:node-autoapprove-bootstrap", _CSR_ROLE + "nodeclient", "Group", BOOTSTRAPPERS),
        _binding("pinnace:node-csr-renewal", "system:node-bootstrapper", "Group", NODES_GROUP),
        _binding(
            "pinnace:node-autoapprove-certificate-rotation",
            _CSR_ROLE + "selfnodeclient",
            "Group",
            NODES_GROUP,
        ),
    ]


def default_roles() -> list[rbac_pb2.Role]:
    """kubeadm's kube-public/kubeadm:bootstrap-signer-clusterinfo: anyone may read cluster-info
    (the CA and the server's address), which joining nodes check against their pinned hash."""
    role = rbac_pb2.Role(
        rules=[
            rbac_pb2.PolicyRule(
                api_groups=[""], resources=["configmaps"], resource_names=["cluster-info"], verbs=["get"]
            )
        ]
    )
    role.metadata.name, role.metadata.namespace = CLUSTER_INFO_ROLE, "kube-public"
    role.metadata.labels["kubernetes.io/bootstrapping"] = "rbac-defaults"
    return [role]


def default_role_bindings() -> list[rbac_pb2.RoleBinding]:
    binding = rbac_pb2.RoleBinding()
    binding.metadata.name, binding.metadata.namespace = CLUSTER_INFO_ROLE, "kube-public"
    binding.metadata.labels["kubernetes.io/bootstrapping"] = "rbac-defaults"
    binding.role_ref.api_group, binding.role_ref.kind, binding.role_ref.name = (
        "rbac.authorization.k8s.io",
        "Role",
        CLUSTER_INFO_ROLE,
    )
    binding.subjects.add(kind="User", name=ANONYMOUS, api_group="rbac.authorization.k8s.io")
    return [binding]


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
        *_csr_bindings(),
    ]
