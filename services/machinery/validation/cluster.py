"""Validation of the remaining kinds: configuration (Secret, ConfigMap, ServiceAccount),
cluster objects (Node, Namespace, Lease, Event, PriorityClass), quota and limits, storage and
RBAC."""

from __future__ import annotations

from pinnace.api.coordination.v1 import coordination_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.rbac.v1 import rbac_pb2
from pinnace.api.scheduling.v1 import scheduling_pb2
from pinnace.api.storage.v1 import storage_pb2
from services.machinery import errors as ferr
from services.machinery import formats
from services.machinery.errors import FieldError
from services.machinery.validation.common import (
    check,
    nonnegative,
    parsed_quantity,
    supported,
    validate_label_selector,
    validate_nonnegative_quantities,
)
from services.machinery.validation.pod import TAINT_EFFECTS, validate_node_selector_term

MAX_SECRET_SIZE = 1024 * 1024
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
HIGHEST_USER_PRIORITY = 1_000_000_000
QUOTA_RESOURCES = (
    "configmaps",
    "count/",
    "cpu",
    "ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "memory",
    "persistentvolumeclaims",
    "pods",
    "replicationcontrollers",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
    "requests.storage",
    "resourcequotas",
    "secrets",
    "services",
    "services.loadbalancers",
    "services.nodeports",
)


def _validate_data_keys(errors: list[FieldError], keys: list[str], path: str) -> None:
    for key in keys:
        check(errors, f"{path}[{key}]", key, formats.config_map_key(key))


def validate_secret(secret: core_pb2.Secret) -> list[FieldError]:
    errors: list[FieldError] = []
    _validate_data_keys(errors, list(secret.data), "data")
    size = sum(len(k) + len(v) for k, v in secret.data.items())
    if size > MAX_SECRET_SIZE:
        errors.append(ferr.too_long("data", MAX_SECRET_SIZE))
    if (
        secret.type == "kubernetes.io/service-account-token"
        and "kubernetes.io/service-account.name" not in secret.metadata.annotations
    ):
        errors.append(ferr.required("metadata.annotations[kubernetes.io/service-account.name]"))
    if secret.type == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" not in secret.data:
        errors.append(ferr.required("data[.dockerconfigjson]"))
    if secret.type == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in secret.data:
                errors.append(ferr.required(f"data[{key}]"))
    return errors


def validate_config_map(cm: core_pb2.ConfigMap) -> list[FieldError]:
    errors: list[FieldError] = []
    _validate_data_keys(errors, list(cm.data), "data")
    _validate_data_keys(errors, list(cm.binary_data), "binaryData")
    for key in cm.binary_data:
        if key in cm.data:
            errors.append(ferr.invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
    size = sum(len(k) + len(v) for k, v in cm.data.items()) + sum(
        len(k) + len(v) for k, v in cm.binary_data.items()
    )
    if size > MAX_SECRET_SIZE:
        errors.append(ferr.too_long("data", MAX_SECRET_SIZE))
    return errors


def validate_service_account(sa: core_pb2.ServiceAccount) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, ref in enumerate(sa.secrets):
        if not ref.name:
            errors.append(ferr.required(f"secrets[{i}].name"))
    return errors


def validate_namespace(ns: core_pb2.Namespace) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, finalizer in enumerate(ns.spec.finalizers):
        check(errors, f"spec.finalizers[{i}]", finalizer, formats.qualified_name(finalizer))
    return errors


def validate_node(node: core_pb2.Node) -> list[FieldError]:
    errors: list[FieldError] = []
    if node.spec.pod_cidr:
        check(errors, "spec.podCIDR", node.spec.pod_cidr, formats.cidr(node.spec.pod_cidr))
    for i, cidr in enumerate(node.spec.pod_cidrs):
        check(errors, f"spec.podCIDRs[{i}]", cidr, formats.cidr(cidr))
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(node.spec.taints):
        path = f"spec.taints[{i}]"
        if not taint.key:
            errors.append(ferr.required(f"{path}.key"))
        else:
            check(errors, f"{path}.key", taint.key, formats.qualified_name(taint.key))
        check(errors, f"{path}.value", taint.value, formats.label_value(taint.value))
        supported(errors, f"{path}.effect", taint.effect, TAINT_EFFECTS)
        if (taint.key, taint.effect) in seen:
            errors.append(ferr.duplicate(path, f"{taint.key}:{taint.effect}"))
        seen.add((taint.key, taint.effect))
    for field, values in (("capacity", node.status.capacity), ("allocatable", node.status.allocatable)):
        errors += validate_nonnegative_quantities(values, f"status.{field}")
    return errors


def validate_resource_quota(quota: core_pb2.ResourceQuota) -> list[FieldError]:
    errors = validate_nonnegative_quantities(quota.spec.hard, "spec.hard")
    for name in quota.spec.hard:
        if name not in QUOTA_RESOURCES and not name.startswith(("count/", "requests.")) and "/" not in name:
            errors.append(ferr.not_supported(f"spec.hard[{name}]", name, QUOTA_RESOURCES))
    for i, scope in enumerate(quota.spec.scopes):
        supported(
            errors,
            f"spec.scopes[{i}]",
            scope,
            ("BestEffort", "NotBestEffort", "NotTerminating", "PriorityClass", "Terminating"),
        )
    return errors


def validate_limit_range(lr: core_pb2.LimitRange) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, item in enumerate(lr.spec.limits):
        path = f"spec.limits[{i}]"
        supported(errors, f"{path}.type", item.type, ("Container", "PersistentVolumeClaim", "Pod"))
        fields = (
            ("max", item.max),
            ("min", item.min),
            ("default", item.default),
            ("defaultRequest", item.default_request),
            ("maxLimitRequestRatio", item.max_limit_request_ratio),
        )
        for name, values in fields:
            errors += validate_nonnegative_quantities(values, f"{path}.{name}")
        if item.type == "Pod" and (item.default or item.default_request):
            errors.append(ferr.forbidden(f"{path}.default", "may not be specified when `type` is 'Pod'"))
        for resource, low_text in item.min.items():
            high_text = item.max.get(resource)
            low = parsed_quantity([], "", low_text)
            high = parsed_quantity([], "", high_text) if high_text else None
            if low is not None and high is not None and low > high:
                errors.append(
                    ferr.invalid(
                        f"{path}.min[{resource}]",
                        low_text,
                        f"min value {low_text} is greater than max value {high_text}",
                    )
                )
        for resource, text in item.default.items():
            value = parsed_quantity([], "", text)
            high_text = item.max.get(resource)
            high = parsed_quantity([], "", high_text) if high_text else None
            if value is not None and high is not None and value > high:
                errors.append(
                    ferr.invalid(
                        f"{path}.default[{resource}]",
                        text,
                        f"default value {text} is greater than max value {high_text}",
                    )
                )
    return errors


def validate_persistent_volume(pv: core_pb2.PersistentVolume) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = pv.spec
    if "storage" not in spec.capacity:
        errors.append(ferr.required("spec.capacity[storage]"))
    errors += validate_nonnegative_quantities(spec.capacity, "spec.capacity")
    if not spec.access_modes:
        errors.append(ferr.required("spec.accessModes"))
    for i, mode in enumerate(spec.access_modes):
        supported(errors, f"spec.accessModes[{i}]", mode, ACCESS_MODES)
    sources = [name for name in ("host_path", "nfs", "local") if spec.HasField(name)]
    if not sources:
        errors.append(ferr.required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        errors.append(ferr.forbidden("spec", "may not specify more than 1 volume type"))
    if spec.HasField("host_path") and not spec.host_path.path:
        errors.append(ferr.required("spec.hostPath.path"))
    if spec.HasField("local") and not spec.local.path:
        errors.append(ferr.required("spec.local.path"))
    supported(
        errors, "spec.persistentVolumeReclaimPolicy", spec.persistent_volume_reclaim_policy, RECLAIM_POLICIES
    )
    for i, term in enumerate(spec.node_affinity.required.node_selector_terms):
        validate_node_selector_term(errors, term, f"spec.nodeAffinity.required.nodeSelectorTerms[{i}]")
    return errors


def validate_persistent_volume_claim(pvc: core_pb2.PersistentVolumeClaim) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = pvc.spec
    if not spec.access_modes:
        errors.append(ferr.required("spec.accessModes", "at least 1 access mode is required"))
    for i, mode in enumerate(spec.access_modes):
        supported(errors, f"spec.accessModes[{i}]", mode, ACCESS_MODES)
    if "storage" not in spec.resources.requests:
        errors.append(ferr.required("spec.resources.requests[storage]"))
    errors += validate_nonnegative_quantities(spec.resources.requests, "spec.resources.requests")
    if spec.HasField("selector"):
        errors += validate_label_selector(spec.selector, "spec.selector")
    return errors


def validate_event(event: core_pb2.Event) -> list[FieldError]:
    errors: list[FieldError] = []
    ref = event.involved_object
    if ref.namespace and event.metadata.namespace and ref.namespace != event.metadata.namespace:
        errors.append(
            ferr.invalid("involvedObject.namespace", ref.namespace, "does not match event.namespace")
        )
    if not ref.kind:
        errors.append(ferr.required("involvedObject.kind"))
    if event.type:
        supported(errors, "type", event.type, ("Normal", "Warning"))
    return errors


def validate_lease(lease: coordination_pb2.Lease) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = lease.spec
    if spec.HasField("lease_duration_seconds") and spec.lease_duration_seconds <= 0:
        errors.append(
            ferr.invalid("spec.leaseDurationSeconds", spec.lease_duration_seconds, "must be greater than 0")
        )
    if spec.HasField("lease_transitions"):
        nonnegative(errors, "spec.leaseTransitions", spec.lease_transitions)
    return errors


def validate_priority_class(pc: scheduling_pb2.PriorityClass) -> list[FieldError]:
    errors: list[FieldError] = []
    system = pc.metadata.name.startswith("system-")
    if system and pc.metadata.name not in ("system-cluster-critical", "system-node-critical"):
        errors.append(
            ferr.forbidden("metadata.name", "priority class names with 'system-' prefix are reserved")
        )
    if not system and pc.value > HIGHEST_USER_PRIORITY:
        errors.append(
            ferr.forbidden(
                "value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"
            )
        )
    if pc.HasField("preemption_policy"):
        supported(errors, "preemptionPolicy", pc.preemption_policy, ("Never", "PreemptLowerPriority"))
    return errors


def validate_storage_class(sc: storage_pb2.StorageClass) -> list[FieldError]:
    errors: list[FieldError] = []
    if not sc.provisioner:
        errors.append(ferr.required("provisioner"))
    if sc.HasField("reclaim_policy"):
        supported(errors, "reclaimPolicy", sc.reclaim_policy, ("Delete", "Retain"))
    if sc.HasField("volume_binding_mode"):
        supported(errors, "volumeBindingMode", sc.volume_binding_mode, ("Immediate", "WaitForFirstConsumer"))
    return errors


def _validate_rules(rules: list[rbac_pb2.PolicyRule], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, rule in enumerate(rules):
        item = f"{path}[{i}]"
        if not rule.verbs:
            errors.append(ferr.required(f"{item}.verbs", "verbs must contain at least one value"))
        if rule.non_resource_urls and (rule.resources or rule.api_groups):
            errors.append(
                ferr.invalid(
                    f"{item}.nonResourceURLs",
                    list(rule.non_resource_urls),
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        if not rule.non_resource_urls and not rule.resources:
            errors.append(
                ferr.required(f"{item}.resources", "resource rules must supply at least one resource")
            )
    return errors


def validate_role(role: rbac_pb2.Role | rbac_pb2.ClusterRole) -> list[FieldError]:
    return _validate_rules(list(role.rules), "rules")


def validate_role_binding(binding: rbac_pb2.RoleBinding | rbac_pb2.ClusterRoleBinding) -> list[FieldError]:
    errors: list[FieldError] = []
    ref = binding.role_ref
    allowed = (
        ("ClusterRole",) if isinstance(binding, rbac_pb2.ClusterRoleBinding) else ("ClusterRole", "Role")
    )
    supported(errors, "roleRef.kind", ref.kind, allowed)
    if ref.api_group != "rbac.authorization.k8s.io":
        errors.append(ferr.not_supported("roleRef.apiGroup", ref.api_group, ("rbac.authorization.k8s.io",)))
    if not ref.name:
        errors.append(ferr.required("roleRef.name"))
    for i, subject in enumerate(binding.subjects):
        path = f"subjects[{i}]"
        supported(errors, f"{path}.kind", subject.kind, ("Group", "ServiceAccount", "User"))
        if not subject.name:
            errors.append(ferr.required(f"{path}.name"))
        if subject.kind == "ServiceAccount":
            check(errors, f"{path}.name", subject.name, formats.dns1123_subdomain(subject.name))
            if isinstance(binding, rbac_pb2.ClusterRoleBinding) and not subject.namespace:
                errors.append(ferr.required(f"{path}.namespace"))
    return errors


def validate_binding(binding: core_pb2.Binding) -> list[FieldError]:
    errors: list[FieldError] = []
    if binding.target.kind not in ("", "Node"):
        errors.append(ferr.not_supported("target.kind", binding.target.kind, ("Node",)))
    if not binding.target.name:
        errors.append(ferr.required("target.name"))
    return errors
