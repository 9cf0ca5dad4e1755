"""Validation of pods and pod templates: containers, volumes, probes, scheduling constraints.

Runs after defaulting (services.machinery.defaults), as in Kubernetes, so fields that have a
default are required here.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.machinery import errors as ferr
from services.machinery import formats
from services.machinery.errors import FieldError
from services.machinery.validation.common import (
    check,
    nonnegative,
    parsed_quantity,
    positive,
    supported,
    validate_label_selector,
    validate_labels,
    validate_nonnegative_quantities,
)

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
MOUNT_PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")
HOST_PATH_TYPES = (
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
)
TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")
NODE_SELECTOR_OPERATORS = ("DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn")
ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
VOLUME_FIELD_PATHS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
)
RESOURCE_FIELD_NAMES = (
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
)
_SUBSCRIPTED_FIELD = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_MAX_FILE_MODE = 0o777
# A projected service-account token lives between 10 minutes and 2^32 seconds (TokenRequest's bounds).
_MIN_TOKEN_SECONDS = 600
_MAX_TOKEN_SECONDS = 1 << 32


def validate_pod(pod: core_pb2.Pod) -> list[FieldError]:
    return validate_pod_spec(pod.spec, "spec")


def validate_pod_template(template: core_pb2.PodTemplateSpec, path: str) -> list[FieldError]:
    errors = validate_labels(template.metadata.labels, f"{path}.metadata.labels")
    errors += validate_pod_spec(template.spec, f"{path}.spec")
    return errors


def validate_pod_spec(spec: core_pb2.PodSpec, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    volumes = _validate_volumes(errors, spec.volumes, f"{path}.volumes")
    if not spec.containers:
        errors.append(ferr.required(f"{path}.containers"))
    seen: set[str] = set()
    for group, containers in (("initContainers", spec.init_containers), ("containers", spec.containers)):
        for i, container in enumerate(containers):
            item = f"{path}.{group}[{i}]"
            _validate_container(errors, container, item, volumes, init=group == "initContainers")
            if container.name and container.name in seen:
                errors.append(ferr.duplicate(f"{item}.name", container.name))
            seen.add(container.name)
    _validate_host_ports(errors, spec, path)
    supported(errors, f"{path}.restartPolicy", spec.restart_policy, RESTART_POLICIES)
    supported(errors, f"{path}.dnsPolicy", spec.dns_policy, DNS_POLICIES)
    if spec.dns_policy == "None" and not spec.dns_config.nameservers:
        errors.append(
            ferr.required(
                f"{path}.dnsConfig.nameservers",
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )
        )
    if spec.HasField("termination_grace_period_seconds"):
        nonnegative(errors, f"{path}.terminationGracePeriodSeconds", spec.termination_grace_period_seconds)
    if spec.HasField("active_deadline_seconds"):
        positive(errors, f"{path}.activeDeadlineSeconds", spec.active_deadline_seconds)
    errors += validate_labels(spec.node_selector, f"{path}.nodeSelector")
    for field, value in (
        ("serviceAccountName", spec.service_account_name),
        ("nodeName", spec.node_name),
        ("priorityClassName", spec.priority_class_name),
    ):
        if value:
            check(errors, f"{path}.{field}", value, formats.dns1123_subdomain(value))
    for field, value in (("hostname", spec.hostname), ("subdomain", spec.subdomain)):
        if value:
            check(errors, f"{path}.{field}", value, formats.dns1123_label(value))
    for i, toleration in enumerate(spec.tolerations):
        _validate_toleration(errors, toleration, f"{path}.tolerations[{i}]")
    if spec.HasField("affinity"):
        _validate_affinity(errors, spec.affinity, f"{path}.affinity")
    if spec.HasField("preemption_policy"):
        supported(
            errors, f"{path}.preemptionPolicy", spec.preemption_policy, ("Never", "PreemptLowerPriority")
        )
    for i, sysctl in enumerate(spec.security_context.sysctls):
        if not sysctl.name:
            errors.append(ferr.required(f"{path}.securityContext.sysctls[{i}].name"))
    return errors


# ---------------------------------------------------------------------- volumes


def _validate_volumes(errors: list[FieldError], volumes: Sequence[core_pb2.Volume], path: str) -> set[str]:
    names: set[str] = set()
    for i, volume in enumerate(volumes):
        item = f"{path}[{i}]"
        if not volume.name:
            errors.append(ferr.required(f"{item}.name"))
        else:
            check(errors, f"{item}.name", volume.name, formats.dns1123_label(volume.name))
            if volume.name in names:
                errors.append(ferr.duplicate(f"{item}.name", volume.name))
            names.add(volume.name)
        sources = [f.name for f, _ in volume.ListFields() if f.name != "name"]
        if not sources:
            errors.append(ferr.required(item, "must specify a volume type"))
        elif len(sources) > 1:
            errors.append(ferr.forbidden(item, "may not specify more than 1 volume type"))
        _validate_volume_source(errors, volume, item)
    return names


def _validate_volume_source(errors: list[FieldError], volume: core_pb2.Volume, path: str) -> None:
    if volume.HasField("host_path"):
        if not volume.host_path.path:
            errors.append(ferr.required(f"{path}.hostPath.path"))
        supported(errors, f"{path}.hostPath.type", volume.host_path.type, HOST_PATH_TYPES)
    if volume.HasField("empty_dir"):
        supported(errors, f"{path}.emptyDir.medium", volume.empty_dir.medium, ("", "Memory"))
        if volume.empty_dir.HasField("size_limit"):
            limit = parsed_quantity(errors, f"{path}.emptyDir.sizeLimit", volume.empty_dir.size_limit)
            if limit is not None and limit.value < 0:
                errors.append(
                    ferr.invalid(
                        f"{path}.emptyDir.sizeLimit",
                        volume.empty_dir.size_limit,
                        "must be greater than or equal to 0",
                    )
                )
    if volume.HasField("secret"):
        if not volume.secret.secret_name:
            errors.append(ferr.required(f"{path}.secret.secretName"))
        _validate_projection(errors, volume.secret, f"{path}.secret")
    if volume.HasField("config_map"):
        if not volume.config_map.name:
            errors.append(ferr.required(f"{path}.configMap.name"))
        _validate_projection(errors, volume.config_map, f"{path}.configMap")
    if volume.HasField("persistent_volume_claim") and not volume.persistent_volume_claim.claim_name:
        errors.append(ferr.required(f"{path}.persistentVolumeClaim.claimName"))
    if volume.HasField("nfs"):
        if not volume.nfs.server:
            errors.append(ferr.required(f"{path}.nfs.server"))
        if not volume.nfs.path:
            errors.append(ferr.required(f"{path}.nfs.path"))
        elif not volume.nfs.path.startswith("/"):
            errors.append(ferr.invalid(f"{path}.nfs.path", volume.nfs.path, "must be an absolute path"))
    if volume.HasField("downward_api"):
        _validate_downward_api(errors, volume.downward_api, f"{path}.downwardAPI")
    if volume.HasField("projected"):
        _validate_projected(errors, volume.projected, f"{path}.projected")


def _validate_projected(errors: list[FieldError], source: core_pb2.ProjectedVolumeSource, path: str) -> None:
    """Kubernetes' validateProjectionSources: one type per source, file paths unique."""
    if source.HasField("default_mode"):
        _validate_file_mode(errors, f"{path}.defaultMode", source.default_mode)
    files: list[tuple[str, str]] = []  # (file path, name of the source's object)
    for i, projection in enumerate(source.sources):
        src = f"{path}.sources[{i}]"
        if len(projection.ListFields()) > 1:
            errors.append(ferr.forbidden(src, "may not specify more than 1 volume type"))
        if projection.HasField("secret"):
            files += _validate_projected_keys(errors, projection.secret, f"{src}.secret")
        if projection.HasField("config_map"):
            files += _validate_projected_keys(errors, projection.config_map, f"{src}.configMap")
        if projection.HasField("downward_api"):
            downward = core_pb2.DownwardAPIVolumeSource(items=projection.downward_api.items)
            _validate_downward_api(errors, downward, f"{src}.downwardAPI")
            files += [(item.path, "") for item in projection.downward_api.items]
        if projection.HasField("service_account_token"):
            token = projection.service_account_token
            _validate_token_projection(errors, token, f"{src}.serviceAccountToken")
            files.append((token.path, ""))
    seen: set[str] = set()
    for file_path, name in files:
        if file_path and file_path in seen:
            errors.append(ferr.invalid(path, name, "conflicting duplicate paths"))
        seen.add(file_path)


def _validate_projected_keys(
    errors: list[FieldError], source: core_pb2.SecretProjection | core_pb2.ConfigMapProjection, path: str
) -> list[tuple[str, str]]:
    if not source.name:
        errors.append(ferr.required(f"{path}.name"))
    for i, item in enumerate(source.items):
        item_path = f"{path}.items[{i}]"
        if not item.key:
            errors.append(ferr.required(f"{item_path}.key"))
        _validate_relative_path(errors, f"{item_path}.path", item.path)
        if item.HasField("mode"):
            _validate_file_mode(errors, f"{item_path}.mode", item.mode)
    return [(item.path, source.name) for item in source.items]


def _validate_token_projection(
    errors: list[FieldError], token: core_pb2.ServiceAccountTokenProjection, path: str
) -> None:
    seconds = token.expiration_seconds
    if seconds < _MIN_TOKEN_SECONDS:
        errors.append(
            ferr.invalid(
                f"{path}.expirationSeconds", seconds, "may not specify a duration less than 10 minutes"
            )
        )
    if seconds > _MAX_TOKEN_SECONDS:
        errors.append(
            ferr.invalid(
                f"{path}.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds"
            )
        )
    _validate_relative_path(errors, f"{path}.path", token.path)


def _validate_file_mode(errors: list[FieldError], path: str, mode: int) -> None:
    if not 0 <= mode <= _MAX_FILE_MODE:
        errors.append(ferr.invalid(path, mode, "must be a number between 0 and 0777 (octal), both inclusive"))


def _validate_relative_path(errors: list[FieldError], path: str, value: str) -> None:
    if not value:
        errors.append(ferr.required(path))
    elif posixpath.isabs(value):
        errors.append(ferr.invalid(path, value, "must be a relative path"))
    elif ".." in value.split("/"):
        errors.append(ferr.invalid(path, value, "must not contain '..'"))


def _validate_projection(
    errors: list[FieldError], source: core_pb2.SecretVolumeSource | core_pb2.ConfigMapVolumeSource, path: str
) -> None:
    if source.HasField("default_mode"):
        _validate_file_mode(errors, f"{path}.defaultMode", source.default_mode)
    for i, item in enumerate(source.items):
        item_path = f"{path}.items[{i}]"
        if not item.key:
            errors.append(ferr.required(f"{item_path}.key"))
        _validate_relative_path(errors, f"{item_path}.path", item.path)
        if item.HasField("mode"):
            _validate_file_mode(errors, f"{item_path}.mode", item.mode)


def _validate_downward_api(
    errors: list[FieldError], source: core_pb2.DownwardAPIVolumeSource, path: str
) -> None:
    if source.HasField("default_mode"):
        _validate_file_mode(errors, f"{path}.defaultMode", source.default_mode)
    for i, item in enumerate(source.items):
        item_path = f"{path}.items[{i}]"
        _validate_relative_path(errors, f"{item_path}.path", item.path)
        has_field, has_resource = item.HasField("field_ref"), item.HasField("resource_field_ref")
        if has_field == has_resource:
            errors.append(
                ferr.invalid(item_path, "", "must specify exactly one of `fieldRef` and `resourceFieldRef`")
            )
        if has_field:
            _validate_field_ref(errors, item.field_ref, f"{item_path}.fieldRef", VOLUME_FIELD_PATHS)
        if has_resource:
            supported(
                errors,
                f"{item_path}.resourceFieldRef.resource",
                item.resource_field_ref.resource,
                RESOURCE_FIELD_NAMES,
            )


def _validate_field_ref(
    errors: list[FieldError], ref: core_pb2.ObjectFieldSelector, path: str, allowed: tuple[str, ...]
) -> None:
    if not ref.field_path:
        errors.append(ferr.required(f"{path}.fieldPath"))
        return
    match = _SUBSCRIPTED_FIELD.match(ref.field_path)
    if match:
        check(errors, f"{path}.fieldPath", ref.field_path, formats.qualified_name(match.group(2)))
        return
    supported(errors, f"{path}.fieldPath", ref.field_path, allowed)


# ---------------------------------------------------------------------- containers


def _validate_container(
    errors: list[FieldError], c: core_pb2.Container, path: str, volumes: set[str], *, init: bool
) -> None:
    if not c.name:
        errors.append(ferr.required(f"{path}.name"))
    else:
        check(errors, f"{path}.name", c.name, formats.dns1123_label(c.name))
    if not c.image.strip():
        errors.append(ferr.required(f"{path}.image"))
    _validate_ports(errors, c.ports, f"{path}.ports")
    _validate_env(errors, c, path)
    _validate_mounts(errors, c.volume_mounts, f"{path}.volumeMounts", volumes)
    _validate_resources(errors, c.resources, f"{path}.resources")
    probes = (
        ("livenessProbe", c.liveness_probe),
        ("readinessProbe", c.readiness_probe),
        ("startupProbe", c.startup_probe),
    )
    for field, probe in probes:
        if not c.HasField(_snake(field)):
            continue
        if init:
            errors.append(ferr.forbidden(f"{path}.{field}", "may not be set for init containers"))
            continue
        _validate_probe(errors, probe, f"{path}.{field}", must_succeed_once=field != "readinessProbe")
    if c.HasField("lifecycle"):
        if init:
            errors.append(ferr.forbidden(f"{path}.lifecycle", "may not be set for init containers"))
        for field, handler in (("postStart", c.lifecycle.post_start), ("preStop", c.lifecycle.pre_stop)):
            if c.lifecycle.HasField(_snake(field)):
                _validate_handler(errors, handler, f"{path}.lifecycle.{field}")
    supported(errors, f"{path}.imagePullPolicy", c.image_pull_policy, PULL_POLICIES)
    supported(
        errors, f"{path}.terminationMessagePolicy", c.termination_message_policy, TERMINATION_MESSAGE_POLICIES
    )
    if c.HasField("security_context"):
        sc = c.security_context
        if sc.HasField("run_as_user"):
            nonnegative(errors, f"{path}.securityContext.runAsUser", sc.run_as_user)
        if sc.HasField("run_as_group"):
            nonnegative(errors, f"{path}.securityContext.runAsGroup", sc.run_as_group)
        if sc.privileged and sc.HasField("allow_privilege_escalation") and not sc.allow_privilege_escalation:
            errors.append(
                ferr.invalid(
                    f"{path}.securityContext",
                    "",
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                )
            )


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _validate_ports(errors: list[FieldError], ports: Sequence[core_pb2.ContainerPort], path: str) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports):
        item = f"{path}[{i}]"
        if port.name:
            check(errors, f"{item}.name", port.name, formats.port_name(port.name))
            if port.name in names:
                errors.append(ferr.duplicate(f"{item}.name", port.name))
            names.add(port.name)
        if port.container_port == 0:
            errors.append(ferr.required(f"{item}.containerPort"))
        else:
            check(
                errors,
                f"{item}.containerPort",
                str(port.container_port),
                formats.port_number(port.container_port),
            )
        if port.host_port:
            check(errors, f"{item}.hostPort", str(port.host_port), formats.port_number(port.host_port))
        supported(errors, f"{item}.protocol", port.protocol, PROTOCOLS)
        if port.host_ip:
            check(errors, f"{item}.hostIP", port.host_ip, formats.ip_address(port.host_ip))


def _validate_host_ports(errors: list[FieldError], spec: core_pb2.PodSpec, path: str) -> None:
    seen: set[tuple[int, str, str]] = set()
    for group, containers in (("initContainers", spec.init_containers), ("containers", spec.containers)):
        for i, c in enumerate(containers):
            for j, port in enumerate(c.ports):
                item = f"{path}.{group}[{i}].ports[{j}]"
                if spec.host_network and port.host_port and port.host_port != port.container_port:
                    errors.append(
                        ferr.invalid(
                            f"{item}.hostPort",
                            port.host_port,
                            "must match `containerPort` when `hostNetwork` is true",
                        )
                    )
                if port.host_port and group == "containers":
                    key = (port.host_port, port.protocol, port.host_ip)
                    if key in seen:
                        errors.append(ferr.duplicate(f"{item}.hostPort", f"{port.host_port}/{port.protocol}"))
                    seen.add(key)


def _validate_env(errors: list[FieldError], c: core_pb2.Container, path: str) -> None:
    for i, env in enumerate(c.env):
        item = f"{path}.env[{i}]"
        if not env.name:
            errors.append(ferr.required(f"{item}.name"))
        else:
            check(errors, f"{item}.name", env.name, formats.env_var_name(env.name))
        if not env.HasField("value_from"):
            continue
        source = env.value_from
        chosen = [f.name for f, _ in source.ListFields()]
        if len(chosen) != 1:
            errors.append(
                ferr.invalid(
                    f"{item}.valueFrom",
                    "",
                    "must specify exactly one of: `fieldRef`, `resourceFieldRef`, "
                    "`configMapKeyRef` or `secretKeyRef`",
                )
            )
        if env.value:
            errors.append(
                ferr.invalid(f"{item}.valueFrom", "", "may not be specified when `value` is not empty")
            )
        if source.HasField("field_ref"):
            _validate_field_ref(errors, source.field_ref, f"{item}.valueFrom.fieldRef", ENV_FIELD_PATHS)
        if source.HasField("resource_field_ref"):
            supported(
                errors,
                f"{item}.valueFrom.resourceFieldRef.resource",
                source.resource_field_ref.resource,
                RESOURCE_FIELD_NAMES,
            )
        for field, ref in (
            ("configMapKeyRef", source.config_map_key_ref),
            ("secretKeyRef", source.secret_key_ref),
        ):
            if not source.HasField(_snake(field)):
                continue
            if not ref.name:
                errors.append(ferr.required(f"{item}.valueFrom.{field}.name"))
            if not ref.key:
                errors.append(ferr.required(f"{item}.valueFrom.{field}.key"))
            else:
                check(errors, f"{item}.valueFrom.{field}.key", ref.key, formats.config_map_key(ref.key))
    for i, env_from in enumerate(c.env_from):
        item = f"{path}.envFrom[{i}]"
        if env_from.prefix:
            check(errors, f"{item}.prefix", env_from.prefix, formats.env_var_name(env_from.prefix))
        has_cm, has_secret = env_from.HasField("config_map_ref"), env_from.HasField("secret_ref")
        if has_cm == has_secret:
            errors.append(ferr.invalid(item, "", "must specify one of: `configMapRef` or `secretRef`"))
        for present, field, name in (
            (has_cm, "configMapRef", env_from.config_map_ref.name),
            (has_secret, "secretRef", env_from.secret_ref.name),
        ):
            if present and not name:
                errors.append(ferr.required(f"{item}.{field}.name"))


def _validate_mounts(
    errors: list[FieldError], mounts: Sequence[core_pb2.VolumeMount], path: str, volumes: set[str]
) -> None:
    paths: set[str] = set()
    for i, mount in enumerate(mounts):
        item = f"{path}[{i}]"
        if not mount.name:
            errors.append(ferr.required(f"{item}.name"))
        elif mount.name not in volumes:
            errors.append(ferr.not_found(f"{item}.name", mount.name))
        if not mount.mount_path:
            errors.append(ferr.required(f"{item}.mountPath"))
        elif mount.mount_path in paths:
            errors.append(ferr.invalid(f"{item}.mountPath", mount.mount_path, "must be unique"))
        paths.add(mount.mount_path)
        if mount.sub_path:
            if posixpath.isabs(mount.sub_path):
                errors.append(ferr.invalid(f"{item}.subPath", mount.sub_path, "must be a relative path"))
            elif ".." in mount.sub_path.split("/"):
                errors.append(ferr.invalid(f"{item}.subPath", mount.sub_path, "must not contain '..'"))
        if mount.HasField("mount_propagation"):
            supported(errors, f"{item}.mountPropagation", mount.mount_propagation, MOUNT_PROPAGATIONS)


def _validate_resource_name(errors: list[FieldError], path: str, name: str) -> None:
    if name in _STANDARD_RESOURCES or name.startswith("hugepages-") or "/" in name:
        check(errors, path, name, formats.qualified_name(name))
        return
    errors.append(ferr.not_supported(path, name, _STANDARD_RESOURCES))


def _validate_resources(
    errors: list[FieldError], resources: core_pb2.ResourceRequirements, path: str
) -> None:
    for field, values in (("limits", resources.limits), ("requests", resources.requests)):
        for name in values:
            _validate_resource_name(errors, f"{path}.{field}[{name}]", name)
        errors += validate_nonnegative_quantities(values, f"{path}.{field}", check_names=False)
    for name, text in resources.requests.items():
        if name not in resources.limits:
            continue
        request = parsed_quantity([], "", text)
        limit = parsed_quantity([], "", resources.limits[name])
        if request is not None and limit is not None and request > limit:
            errors.append(
                ferr.invalid(
                    f"{path}.requests",
                    text,
                    f"must be less than or equal to {name} limit of {resources.limits[name]}",
                )
            )


def _validate_port_reference(errors: list[FieldError], port: meta_pb2.IntOrString, path: str) -> None:
    which = port.WhichOneof("value")
    if which is None:
        errors.append(ferr.required(path))
    elif which == "int_val":
        check(errors, path, str(port.int_val), formats.port_number(port.int_val))
    else:
        check(errors, path, port.str_val, formats.port_name(port.str_val))


def _validate_handler(
    errors: list[FieldError], handler: core_pb2.LifecycleHandler | core_pb2.Probe, path: str
) -> None:
    chosen = [name for name in ("exec", "http_get", "tcp_socket") if handler.HasField(name)]
    if not chosen:
        errors.append(ferr.required(path, "must specify a handler type"))
    elif len(chosen) > 1:
        errors.append(ferr.forbidden(path, "may not specify more than 1 handler type"))
    if handler.HasField("exec") and not handler.exec.command:
        errors.append(ferr.required(f"{path}.exec.command"))
    if handler.HasField("http_get"):
        _validate_port_reference(errors, handler.http_get.port, f"{path}.httpGet.port")
        supported(errors, f"{path}.httpGet.scheme", handler.http_get.scheme, ("HTTP", "HTTPS"))
    if handler.HasField("tcp_socket"):
        _validate_port_reference(errors, handler.tcp_socket.port, f"{path}.tcpSocket.port")


def _validate_probe(
    errors: list[FieldError], probe: core_pb2.Probe, path: str, *, must_succeed_once: bool
) -> None:
    _validate_handler(errors, probe, path)
    nonnegative(errors, f"{path}.initialDelaySeconds", probe.initial_delay_seconds)
    for field, value in (
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ):
        positive(errors, f"{path}.{field}", value)
    if must_succeed_once and probe.success_threshold != 1:
        errors.append(ferr.invalid(f"{path}.successThreshold", probe.success_threshold, "must be 1"))


# ---------------------------------------------------------------------- scheduling constraints


def _validate_toleration(errors: list[FieldError], t: core_pb2.Toleration, path: str) -> None:
    if t.key:
        check(errors, f"{path}.key", t.key, formats.qualified_name(t.key))
    operator = t.operator or "Equal"
    if operator == "Exists":
        if t.value:
            errors.append(
                ferr.invalid(f"{path}.operator", t.value, "value must be empty when `operator` is 'Exists'")
            )
    elif operator == "Equal":
        if not t.key:
            errors.append(
                ferr.invalid(
                    f"{path}.operator",
                    t.operator,
                    'operator must be Exists when `key` is empty, which means "match all '
                    'values and all keys"',
                )
            )
        check(errors, f"{path}.value", t.value, formats.label_value(t.value))
    else:
        errors.append(ferr.not_supported(f"{path}.operator", t.operator, ("Equal", "Exists")))
    if t.effect:
        supported(errors, f"{path}.effect", t.effect, TAINT_EFFECTS)
    if t.HasField("toleration_seconds") and t.effect != "NoExecute":
        errors.append(
            ferr.invalid(
                f"{path}.effect", t.effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"
            )
        )


def validate_node_selector_requirement(
    errors: list[FieldError], req: core_pb2.NodeSelectorRequirement, path: str
) -> None:
    check(errors, f"{path}.key", req.key, formats.qualified_name(req.key))
    if req.operator in ("In", "NotIn"):
        if not req.values:
            errors.append(
                ferr.required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
            )
    elif req.operator in ("Exists", "DoesNotExist"):
        if req.values:
            errors.append(
                ferr.forbidden(
                    f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            )
    elif req.operator in ("Gt", "Lt"):
        if len(req.values) != 1 or not req.values[0].lstrip("-").isdigit():
            errors.append(
                ferr.required(
                    f"{path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"
                )
            )
    else:
        errors.append(ferr.not_supported(f"{path}.operator", req.operator, NODE_SELECTOR_OPERATORS))


def validate_node_selector_term(errors: list[FieldError], term: core_pb2.NodeSelectorTerm, path: str) -> None:
    for i, req in enumerate(term.match_expressions):
        validate_node_selector_requirement(errors, req, f"{path}.matchExpressions[{i}]")
    for i, req in enumerate(term.match_fields):
        item = f"{path}.matchFields[{i}]"
        if req.key != "metadata.name":
            errors.append(ferr.not_supported(f"{item}.key", req.key, ("metadata.name",)))
        if req.operator not in ("In", "NotIn") or len(req.values) != 1:
            errors.append(
                ferr.invalid(
                    item, req.operator, "must be 'In' or 'NotIn' with exactly one value for `matchFields`"
                )
            )


def _validate_weight(errors: list[FieldError], path: str, weight: int) -> None:
    if not 1 <= weight <= 100:
        errors.append(ferr.invalid(path, weight, "must be in the range 1-100"))


def _validate_pod_affinity_term(errors: list[FieldError], term: core_pb2.PodAffinityTerm, path: str) -> None:
    if not term.topology_key:
        errors.append(ferr.required(f"{path}.topologyKey", "can not be empty"))
    else:
        check(errors, f"{path}.topologyKey", term.topology_key, formats.qualified_name(term.topology_key))
    if term.HasField("label_selector"):
        errors.extend(validate_label_selector(term.label_selector, f"{path}.labelSelector"))
    for i, ns in enumerate(term.namespaces):
        check(errors, f"{path}.namespaces[{i}]", ns, formats.dns1123_label(ns))


def _validate_affinity(errors: list[FieldError], affinity: core_pb2.Affinity, path: str) -> None:
    node = affinity.node_affinity
    if node.HasField("required_during_scheduling_ignored_during_execution"):
        required = node.required_during_scheduling_ignored_during_execution
        item = f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        if not required.node_selector_terms:
            errors.append(
                ferr.required(f"{item}.nodeSelectorTerms", "must have at least one node selector term")
            )
        for i, term in enumerate(required.node_selector_terms):
            validate_node_selector_term(errors, term, f"{item}.nodeSelectorTerms[{i}]")
    for i, pref in enumerate(node.preferred_during_scheduling_ignored_during_execution):
        item = f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        _validate_weight(errors, f"{item}.weight", pref.weight)
        validate_node_selector_term(errors, pref.preference, f"{item}.preference")
    for field, group in (
        ("podAffinity", affinity.pod_affinity),
        ("podAntiAffinity", affinity.pod_anti_affinity),
    ):
        for i, affinity_term in enumerate(group.required_during_scheduling_ignored_during_execution):
            _validate_pod_affinity_term(
                errors, affinity_term, f"{path}.{field}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"
            )
        for i, weighted in enumerate(group.preferred_during_scheduling_ignored_during_execution):
            item = f"{path}.{field}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            _validate_weight(errors, f"{item}.weight", weighted.weight)
            _validate_pod_affinity_term(errors, weighted.pod_affinity_term, f"{item}.podAffinityTerm")
