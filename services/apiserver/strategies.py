"""Per-kind behaviour of the generic registry, as Kubernetes' REST strategies define it: what
a create resets, which fields an update may not change, which kinds have a status
subresource, and how pods are deleted gracefully."""

from __future__ import annotations

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.batch.v1 import batch_pb2
from pinnace.api.certificates.v1 import certificates_pb2
from pinnace.api.core.v1 import core_pb2
from services.apiserver import csr
from services.apiserver.auth.guard import CURRENT_USER
from services.machinery import errors as ferr
from services.machinery.errors import FieldError
from services.machinery.kinds import KindInfo
from services.machinery.quantity import parse_quantity
from services.machinery.validation.certificates import validate_csr_update

# Kinds whose create keeps the status the client sent (the kubelet registers its Node with it).
_STATUS_KEPT_ON_CREATE = ("Node", "Event")


def has_spec(obj: Message) -> bool:
    return "spec" in obj.DESCRIPTOR.fields_by_name


def has_status_subresource(info: KindInfo) -> bool:
    return "status" in info.subresources


def prepare_for_create(info: KindInfo, obj: Message) -> None:
    if has_status_subresource(info) and info.kind not in _STATUS_KEPT_ON_CREATE:
        obj.ClearField("status")
    if isinstance(obj, core_pb2.Pod):
        obj.status.phase = "Pending"
        obj.status.qos_class = qos_class(obj.spec)
    elif isinstance(obj, core_pb2.Namespace):
        # The namespace controller removes this finalizer once the namespace's content is gone.
        if not obj.spec.finalizers:
            obj.spec.finalizers.append("kubernetes")
        obj.status.phase = "Active"
    elif isinstance(obj, (core_pb2.PersistentVolume, core_pb2.PersistentVolumeClaim)):
        obj.status.phase = "Pending"
    elif isinstance(obj, certificates_pb2.CertificateSigningRequest):
        csr.prepare_create(obj, CURRENT_USER.get())
    obj.metadata.generation = 1 if has_spec(obj) else 0  # type: ignore[attr-defined]


def qos_class(spec: core_pb2.PodSpec) -> str:
    """Guaranteed, Burstable or BestEffort, computed as the kubelet does."""
    containers = list(spec.containers) + list(spec.init_containers)
    if all(not c.resources.requests and not c.resources.limits for c in containers):
        return "BestEffort"
    for c in containers:
        limits, requests = c.resources.limits, c.resources.requests
        for resource in ("cpu", "memory"):
            if resource not in limits:
                return "Burstable"
            request = requests.get(resource, limits[resource])
            if parse_quantity(request) != parse_quantity(limits[resource]):
                return "Burstable"
    return "Guaranteed"


def prepare_for_update(old: Message, new: Message, subresource: str) -> None:
    """Kind-specific resets after the generic merge (which fields a subresource may change)."""
    if isinstance(old, certificates_pb2.CertificateSigningRequest):
        assert isinstance(new, certificates_pb2.CertificateSigningRequest)
        csr.prepare_update(old, new, subresource)


def validate_any_update(old: Message, new: Message, subresource: str) -> list[FieldError]:
    """Rules that compare with the stored object on every write, subresources included."""
    if isinstance(old, certificates_pb2.CertificateSigningRequest):
        assert isinstance(new, certificates_pb2.CertificateSigningRequest)
        return validate_csr_update(old, new, subresource)
    return []


def spec_changed(old: Message, new: Message) -> bool:
    return has_spec(new) and getattr(old, "spec") != getattr(new, "spec")  # noqa: B009


def _immutable(errors: list[FieldError], path: str, old: object, new: object) -> None:
    if old != new:
        errors.append(ferr.invalid(path, str(new), "field is immutable"))


_POD_MUTABLE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
    "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
    "previously negative)"
)


def _pod_update_errors(old: core_pb2.Pod, new: core_pb2.Pod) -> list[FieldError]:
    comparable_old, comparable_new = core_pb2.PodSpec(), core_pb2.PodSpec()
    comparable_old.CopyFrom(old.spec)
    comparable_new.CopyFrom(new.spec)
    for group in ("containers", "init_containers"):
        for a, b in zip(getattr(comparable_old, group), getattr(comparable_new, group), strict=False):
            a.image = b.image
    comparable_old.active_deadline_seconds = comparable_new.active_deadline_seconds
    if not comparable_new.HasField("active_deadline_seconds"):
        comparable_old.ClearField("active_deadline_seconds")
    old_tolerations = list(comparable_old.tolerations)
    new_tolerations = list(comparable_new.tolerations)
    if new_tolerations[: len(old_tolerations)] == old_tolerations:
        del comparable_old.tolerations[:]
        del comparable_new.tolerations[:]
    if comparable_old != comparable_new:
        return [ferr.forbidden("spec", _POD_MUTABLE_MESSAGE)]
    return []


def validate_update(info: KindInfo, old: Message, new: Message) -> list[FieldError]:
    """Rules that compare the new object with the stored one."""
    errors: list[FieldError] = []
    if isinstance(old, core_pb2.Pod) and isinstance(new, core_pb2.Pod):
        errors += _pod_update_errors(old, new)
    elif isinstance(old, core_pb2.Service) and isinstance(new, core_pb2.Service):
        if (
            old.spec.cluster_ip
            and new.spec.cluster_ip
            and old.spec.type != "ExternalName"
            and new.spec.type != "ExternalName"
        ):
            _immutable(errors, "spec.clusterIP", old.spec.cluster_ip, new.spec.cluster_ip)
    elif isinstance(
        old, (apps_pb2.ReplicaSet, apps_pb2.Deployment, apps_pb2.DaemonSet, apps_pb2.StatefulSet)
    ):
        _immutable(errors, "spec.selector", old.spec.selector, new.spec.selector)  # type: ignore[attr-defined]
    elif isinstance(old, batch_pb2.Job) and isinstance(new, batch_pb2.Job):
        _immutable(errors, "spec.selector", old.spec.selector, new.spec.selector)
        if old.spec.template != new.spec.template:
            errors.append(ferr.invalid("spec.template", "", "field is immutable"))
        _immutable(errors, "spec.completions", old.spec.completions, new.spec.completions)
        _immutable(errors, "spec.completionMode", old.spec.completion_mode, new.spec.completion_mode)
    elif isinstance(old, apps_pb2.ControllerRevision) and isinstance(new, apps_pb2.ControllerRevision):
        if old.data != new.data:
            errors.append(ferr.invalid("data", "", "field is immutable"))
    elif isinstance(old, (core_pb2.Secret, core_pb2.ConfigMap)) and old.immutable:
        assert isinstance(new, (core_pb2.Secret, core_pb2.ConfigMap))
        binary_changed = (
            isinstance(old, core_pb2.ConfigMap)
            and isinstance(new, core_pb2.ConfigMap)
            and old.binary_data != new.binary_data
        )
        if old.data != new.data or binary_changed:
            errors.append(ferr.forbidden("data", "field is immutable when `immutable` is set"))
        if not new.immutable:
            errors.append(ferr.forbidden("immutable", "field is immutable when `immutable` is set"))
    elif isinstance(old, core_pb2.PersistentVolumeClaim) and isinstance(new, core_pb2.PersistentVolumeClaim):
        old_spec, new_spec = core_pb2.PersistentVolumeClaimSpec(), core_pb2.PersistentVolumeClaimSpec()
        old_spec.CopyFrom(old.spec)
        new_spec.CopyFrom(new.spec)
        old_spec.ClearField("resources")
        new_spec.ClearField("resources")
        if not old.spec.volume_name:
            old_spec.volume_name = new_spec.volume_name
        if old_spec != new_spec:
            errors.append(
                ferr.forbidden(
                    "spec", "spec is immutable after creation except resources.requests for bound claims"
                )
            )
    if isinstance(old, core_pb2.Pod) and isinstance(new, core_pb2.Pod) and old.spec.node_name:
        _immutable(errors, "spec.nodeName", old.spec.node_name, new.spec.node_name)
    return errors


def default_grace_seconds(obj: Message) -> int:
    """How long a delete waits for the owner to confirm; 0 deletes at once."""
    if isinstance(obj, core_pb2.Pod):
        # Pods no kubelet runs cannot be confirmed by anyone: they go at once.
        if not obj.spec.node_name or obj.status.phase in ("Succeeded", "Failed"):
            return 0
        return (
            obj.spec.termination_grace_period_seconds
            if obj.spec.HasField("termination_grace_period_seconds")
            else 30
        )
    return 0


def supports_graceful_deletion(obj: Message) -> bool:
    return isinstance(obj, core_pb2.Pod)


def has_finalizers(obj: Message) -> bool:
    """Finalizers in metadata, or a namespace's spec finalizers (its content is being removed)."""
    if obj.metadata.finalizers:  # type: ignore[attr-defined]
        return True
    return isinstance(obj, core_pb2.Namespace) and bool(obj.spec.finalizers)


def blocks_deletion(obj: Message) -> bool:
    """Whether something must still confirm before a marked object leaves storage: finalizers,
    or a pod's kubelet within its grace period."""
    if has_finalizers(obj):
        return True
    return supports_graceful_deletion(obj) and obj.metadata.deletion_grace_period_seconds > 0  # type: ignore[attr-defined]


def mark_terminating(obj: Message) -> None:
    if isinstance(obj, core_pb2.Namespace):
        obj.status.phase = "Terminating"
