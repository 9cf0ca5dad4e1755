"""Validation of every kind, reporting all errors at once with their field paths.

`validate(obj)` runs the metadata rules of the object's kind and then the kind's own rules.
It expects a defaulted object (services.machinery.defaults.apply_defaults), as Kubernetes
validates after defaulting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
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
from services.machinery import formats
from services.machinery.errors import FieldError, raise_if_any
from services.machinery.kinds import REGISTRY
from services.machinery.validation import certificates, cluster, network, pod, workloads
from services.machinery.validation.common import NameRule, path_segment_name, validate_object_meta
from services.machinery.validation.network import ServiceRules

__all__ = ["ServiceRules", "validate", "validate_or_raise"]

_Validator = Callable[[Any], list[FieldError]]

_VALIDATORS: dict[type[Message], _Validator] = {
    core_pb2.Pod: pod.validate_pod,
    core_pb2.ReplicationController: workloads.validate_replication_controller,
    core_pb2.Endpoints: network.validate_endpoints,
    core_pb2.Secret: cluster.validate_secret,
    core_pb2.ConfigMap: cluster.validate_config_map,
    core_pb2.ServiceAccount: cluster.validate_service_account,
    core_pb2.Namespace: cluster.validate_namespace,
    core_pb2.Node: cluster.validate_node,
    core_pb2.ResourceQuota: cluster.validate_resource_quota,
    core_pb2.LimitRange: cluster.validate_limit_range,
    core_pb2.PersistentVolume: cluster.validate_persistent_volume,
    core_pb2.PersistentVolumeClaim: cluster.validate_persistent_volume_claim,
    core_pb2.Event: cluster.validate_event,
    core_pb2.Binding: cluster.validate_binding,
    apps_pb2.ReplicaSet: workloads.validate_replica_set,
    apps_pb2.Deployment: workloads.validate_deployment,
    apps_pb2.DaemonSet: workloads.validate_daemon_set,
    apps_pb2.StatefulSet: workloads.validate_stateful_set,
    apps_pb2.ControllerRevision: workloads.validate_controller_revision,
    batch_pb2.Job: workloads.validate_job,
    batch_pb2.CronJob: workloads.validate_cron_job,
    autoscaling_pb2.HorizontalPodAutoscaler: workloads.validate_hpa,
    policy_pb2.PodDisruptionBudget: workloads.validate_pod_disruption_budget,
    coordination_pb2.Lease: cluster.validate_lease,
    certificates_pb2.CertificateSigningRequest: certificates.validate_csr,
    scheduling_pb2.PriorityClass: cluster.validate_priority_class,
    storage_pb2.StorageClass: cluster.validate_storage_class,
    rbac_pb2.Role: cluster.validate_role,
    rbac_pb2.ClusterRole: cluster.validate_role,
    rbac_pb2.RoleBinding: cluster.validate_role_binding,
    rbac_pb2.ClusterRoleBinding: cluster.validate_role_binding,
    networking_pb2.Ingress: network.validate_ingress,
}

_NAME_RULES: dict[type[Message], NameRule] = {
    core_pb2.Namespace: formats.dns1123_label,
    core_pb2.Service: formats.dns1035_label,
    rbac_pb2.Role: path_segment_name,
    rbac_pb2.ClusterRole: path_segment_name,
    rbac_pb2.RoleBinding: path_segment_name,
    rbac_pb2.ClusterRoleBinding: path_segment_name,
}


def validate(obj: Message, service_rules: ServiceRules | None = None) -> list[FieldError]:
    """Every problem with a (defaulted) object; empty when it is valid."""
    info = REGISTRY.by_message(obj)
    name_rule = _NAME_RULES.get(type(obj), formats.dns1123_subdomain)
    errors = validate_object_meta(obj.metadata, namespaced=info.namespaced, name_rule=name_rule)  # type: ignore[attr-defined]
    if isinstance(obj, core_pb2.Service):
        errors += network.validate_service(obj, service_rules or ServiceRules())
    else:
        validator = _VALIDATORS.get(type(obj))
        if validator is not None:
            errors += validator(obj)
    return errors


def validate_or_raise(obj: Message, service_rules: ServiceRules | None = None) -> None:
    """Raise ValidationError naming the object ("Pod \\"web\\" is invalid: ...") when it is invalid."""
    info = REGISTRY.by_message(obj)
    name = obj.metadata.name or obj.metadata.generate_name  # type: ignore[attr-defined]
    raise_if_any(validate(obj, service_rules), f'{info.kind} "{name}"')
