"""The registry of kinds: what every component asks to turn "deploy", "Deployment" or
"apps/v1 Deployment" into a message type, a plural resource name and a scope.

One table drives the apiserver's routing, the manifest codec, the CLI's short names and the
field selectors each kind supports, so adding a kind is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.authentication.v1 import authentication_pb2
from pinnace.api.authorization.v1 import authorization_pb2
from pinnace.api.autoscaling.v1 import autoscaling_pb2
from pinnace.api.batch.v1 import batch_pb2
from pinnace.api.certificates.v1 import certificates_pb2
from pinnace.api.coordination.v1 import coordination_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.networking.v1 import networking_pb2
from pinnace.api.policy.v1 import policy_pb2
from pinnace.api.rbac.v1 import rbac_pb2
from pinnace.api.scheduling.v1 import scheduling_pb2
from pinnace.api.storage.v1 import storage_pb2

FieldExtractor = Callable[[Message], dict[str, str]]


@dataclass(frozen=True)
class KindInfo:
    group: str
    version: str
    kind: str
    plural: str
    message_type: type[Message]
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    # Kind-specific field labels for field selectors, beyond metadata.name/metadata.namespace.
    extra_fields: FieldExtractor | None = field(default=None, compare=False)
    # Only reachable as a subresource body (Binding, Scale, Eviction): no storage of its own.
    subresource_only: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def resource(self) -> str:
        """group-qualified plural, e.g. "deployments.apps" (as RBAC and errors name it)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def field_labels(self) -> set[str]:
        labels = {"metadata.name"}
        if self.namespaced:
            labels.add("metadata.namespace")
        if self.extra_fields is not None:
            labels |= set(self.extra_fields(self.message_type()))
        return labels

    def field_values(self, obj: Message) -> dict[str, str]:
        """The values of every supported field label of one object."""
        meta = obj.metadata  # type: ignore[attr-defined]
        values = {"metadata.name": meta.name}
        if self.namespaced:
            values["metadata.namespace"] = meta.namespace
        if self.extra_fields is not None:
            values.update(self.extra_fields(obj))
        return values

    def new(self) -> Message:
        return self.message_type()


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _pod_fields(pod: Message) -> dict[str, str]:
    assert isinstance(pod, core_pb2.Pod)
    return {
        "spec.nodeName": pod.spec.node_name,
        "spec.restartPolicy": pod.spec.restart_policy,
        "spec.schedulerName": pod.spec.scheduler_name,
        "spec.serviceAccountName": pod.spec.service_account_name,
        "spec.hostNetwork": _bool(pod.spec.host_network),
        "status.phase": pod.status.phase,
        "status.podIP": pod.status.pod_ip,
        "status.nominatedNodeName": pod.status.nominated_node_name,
    }


def _node_fields(node: Message) -> dict[str, str]:
    assert isinstance(node, core_pb2.Node)
    return {"spec.unschedulable": _bool(node.spec.unschedulable)}


def _namespace_fields(ns: Message) -> dict[str, str]:
    assert isinstance(ns, core_pb2.Namespace)
    return {"status.phase": ns.status.phase}


def _secret_fields(secret: Message) -> dict[str, str]:
    assert isinstance(secret, core_pb2.Secret)
    return {"type": secret.type}


def _event_fields(event: Message) -> dict[str, str]:
    assert isinstance(event, core_pb2.Event)
    ref = event.involved_object
    return {
        "involvedObject.kind": ref.kind,
        "involvedObject.namespace": ref.namespace,
        "involvedObject.name": ref.name,
        "involvedObject.uid": ref.uid,
        "involvedObject.apiVersion": ref.api_version,
        "involvedObject.resourceVersion": ref.resource_version,
        "involvedObject.fieldPath": ref.field_path,
        "reason": event.reason,
        "reportingComponent": event.reporting_component,
        "source": event.source.component,
        "type": event.type,
    }


def _replicas_fields(obj: Message) -> dict[str, str]:
    return {"status.replicas": str(obj.status.replicas)}  # type: ignore[attr-defined]


def _job_fields(job: Message) -> dict[str, str]:
    assert isinstance(job, batch_pb2.Job)
    return {"status.successful": str(job.status.succeeded)}


def _service_fields(svc: Message) -> dict[str, str]:
    assert isinstance(svc, core_pb2.Service)
    return {"spec.clusterIP": svc.spec.cluster_ip, "spec.type": svc.spec.type}


def _csr_fields(csr: Message) -> dict[str, str]:
    assert isinstance(csr, certificates_pb2.CertificateSigningRequest)
    return {"spec.signerName": csr.spec.signer_name}


_STATUS = ("status",)
_SCALABLE = ("status", "scale")

KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        "",
        "v1",
        "Namespace",
        "namespaces",
        core_pb2.Namespace,
        namespaced=False,
        short_names=("ns",),
        subresources=("status", "finalize"),
        extra_fields=_namespace_fields,
    ),
    KindInfo(
        "",
        "v1",
        "Node",
        "nodes",
        core_pb2.Node,
        namespaced=False,
        short_names=("no",),
        subresources=("status", "proxy"),
        extra_fields=_node_fields,
    ),
    KindInfo(
        "",
        "v1",
        "Pod",
        "pods",
        core_pb2.Pod,
        short_names=("po",),
        subresources=("status", "binding", "eviction", "log", "exec", "attach", "portforward", "proxy"),
        extra_fields=_pod_fields,
    ),
    KindInfo(
        "",
        "v1",
        "Service",
        "services",
        core_pb2.Service,
        short_names=("svc",),
        subresources=("status", "proxy"),
        extra_fields=_service_fields,
    ),
    KindInfo("", "v1", "Endpoints", "endpoints", core_pb2.Endpoints, short_names=("ep",)),
    KindInfo(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        core_pb2.ReplicationController,
        short_names=("rc",),
        subresources=_SCALABLE,
        extra_fields=_replicas_fields,
    ),
    KindInfo("", "v1", "Secret", "secrets", core_pb2.Secret, extra_fields=_secret_fields),
    KindInfo("", "v1", "ConfigMap", "configmaps", core_pb2.ConfigMap, short_names=("cm",)),
    KindInfo(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        core_pb2.ServiceAccount,
        short_names=("sa",),
        subresources=("token",),
    ),
    KindInfo(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        core_pb2.ResourceQuota,
        short_names=("quota",),
        subresources=_STATUS,
    ),
    KindInfo("", "v1", "LimitRange", "limitranges", core_pb2.LimitRange, short_names=("limits",)),
    KindInfo(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        core_pb2.PersistentVolume,
        namespaced=False,
        short_names=("pv",),
        subresources=_STATUS,
    ),
    KindInfo(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        core_pb2.PersistentVolumeClaim,
        short_names=("pvc",),
        subresources=_STATUS,
    ),
    KindInfo("", "v1", "Event", "events", core_pb2.Event, short_names=("ev",), extra_fields=_event_fields),
    KindInfo("", "v1", "Binding", "bindings", core_pb2.Binding, subresource_only=True),
    KindInfo(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        apps_pb2.ReplicaSet,
        short_names=("rs",),
        subresources=_SCALABLE,
        extra_fields=_replicas_fields,
    ),
    KindInfo(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        apps_pb2.Deployment,
        short_names=("deploy",),
        subresources=_SCALABLE,
    ),
    KindInfo(
        "apps", "v1", "DaemonSet", "daemonsets", apps_pb2.DaemonSet, short_names=("ds",), subresources=_STATUS
    ),
    KindInfo(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        apps_pb2.StatefulSet,
        short_names=("sts",),
        subresources=_SCALABLE,
    ),
    KindInfo("apps", "v1", "ControllerRevision", "controllerrevisions", apps_pb2.ControllerRevision),
    KindInfo(
        "batch",
        "v1",
        "Job",
        "jobs",
        batch_pb2.Job,
        short_names=("job",),
        subresources=_STATUS,
        extra_fields=_job_fields,
    ),
    KindInfo(
        "batch", "v1", "CronJob", "cronjobs", batch_pb2.CronJob, short_names=("cj",), subresources=_STATUS
    ),
    KindInfo(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        autoscaling_pb2.HorizontalPodAutoscaler,
        short_names=("hpa",),
        subresources=_STATUS,
    ),
    KindInfo("autoscaling", "v1", "Scale", "scales", autoscaling_pb2.Scale, subresource_only=True),
    KindInfo(
        "authentication.k8s.io",
        "v1",
        "TokenRequest",
        "tokenrequests",
        authentication_pb2.TokenRequest,
        subresource_only=True,
    ),
    KindInfo(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        authorization_pb2.SubjectAccessReview,
        namespaced=False,
        subresource_only=True,
    ),
    KindInfo("coordination.k8s.io", "v1", "Lease", "leases", coordination_pb2.Lease),
    KindInfo(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        certificates_pb2.CertificateSigningRequest,
        namespaced=False,
        short_names=("csr",),
        subresources=("status", "approval"),
        extra_fields=_csr_fields,
    ),
    KindInfo(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        scheduling_pb2.PriorityClass,
        namespaced=False,
        short_names=("pc",),
    ),
    KindInfo("rbac.authorization.k8s.io", "v1", "Role", "roles", rbac_pb2.Role),
    KindInfo(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        rbac_pb2.ClusterRole,
        namespaced=False,
    ),
    KindInfo("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", rbac_pb2.RoleBinding),
    KindInfo(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        rbac_pb2.ClusterRoleBinding,
        namespaced=False,
    ),
    KindInfo(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        networking_pb2.Ingress,
        short_names=("ing",),
        subresources=_STATUS,
    ),
    KindInfo("policy", "v1", "Eviction", "evictions", policy_pb2.Eviction, subresource_only=True),
    KindInfo(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        policy_pb2.PodDisruptionBudget,
        short_names=("pdb",),
        subresources=_STATUS,
    ),
    KindInfo(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        storage_pb2.StorageClass,
        namespaced=False,
        short_names=("sc",),
    ),
)


class UnknownKindError(LookupError):
    """No kind matches; the message reads like kubectl's."""


class _Registry:
    def __init__(self, kinds: tuple[KindInfo, ...]) -> None:
        self.kinds = kinds
        self._by_gvk = {(k.api_version, k.kind): k for k in kinds}
        self._by_message = {k.message_type.DESCRIPTOR.full_name: k for k in kinds}
        self._by_name: dict[str, KindInfo] = {}
        for k in kinds:
            if k.subresource_only:
                continue
            for name in (k.plural, k.singular, k.kind.lower(), k.resource, *k.short_names):
                self._by_name.setdefault(name.lower(), k)

    def by_gvk(self, api_version: str, kind: str) -> KindInfo:
        info = self._by_gvk.get((api_version, kind))
        if info is None:
            known = [k.api_version for k in self.kinds if k.kind == kind]
            hint = f" (it is served as {', '.join(known)})" if known else ""
            raise UnknownKindError(f'no matches for kind "{kind}" in version "{api_version}"{hint}')
        return info

    def by_name(self, name: str) -> KindInfo:
        """Resolve what a user types: plural, singular, short name or plural.group."""
        info = self._by_name.get(name.lower())
        if info is None:
            raise UnknownKindError(f'the server doesn\'t have a resource type "{name}"')
        return info

    def by_message(self, message: Message) -> KindInfo:
        info = self._by_message.get(message.DESCRIPTOR.full_name)
        if info is None:
            raise UnknownKindError(f"{message.DESCRIPTOR.full_name} is not a registered kind")
        return info

    def stored(self) -> list[KindInfo]:
        return [k for k in self.kinds if not k.subresource_only]


REGISTRY = _Registry(KINDS)
