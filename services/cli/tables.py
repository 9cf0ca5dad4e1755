"""The human-readable columns of `pinctl get`, per kind, as kubectl prints them (its
internalversion printers): the same headers, the same `<none>`/`<unknown>`/`<pending>` cells,
the same wide columns. A kind without its own columns gets NAME and AGE."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.autoscaling.v1 import autoscaling_pb2
from pinnace.api.batch.v1 import batch_pb2
from pinnace.api.certificates.v1 import certificates_pb2
from pinnace.api.coordination.v1 import coordination_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from pinnace.api.networking.v1 import networking_pb2
from pinnace.api.policy.v1 import policy_pb2
from pinnace.api.rbac.v1 import rbac_pb2
from pinnace.api.scheduling.v1 import scheduling_pb2
from pinnace.api.storage.v1 import storage_pb2
from services.cli.podstatus import restarts_cell, summarize
from services.cli.printers import age, human_duration
from services.machinery import labels
from services.machinery.kinds import KindInfo

NONE = "<none>"
UNKNOWN = "<unknown>"

# cells (after NAME) and the extra cells of -o wide, for one object at `now`.
Cells = tuple[list[str], list[str]]
RowFunction = Callable[[Message, dt.datetime], Cells]


@dataclass(frozen=True)
class Columns:
    headers: tuple[str, ...]
    wide: tuple[str, ...]
    row: RowFunction
    # Events lead with LAST SEEN instead of NAME (and put NAME last in the wide form).
    name_first: bool = True


def format_labels(values: Mapping[str, str]) -> str:
    """labels.FormatLabels: sorted `k=v` pairs, `<none>` when empty."""
    return ",".join(f"{k}={v}" for k, v in sorted(values.items())) or NONE


def format_selector(selector: meta_pb2.LabelSelector | None) -> str:
    if selector is None:
        return NONE
    text = str(labels.from_label_selector(selector))
    return text or NONE


def _join(values: Sequence[str]) -> str:
    return ",".join(values)


def _containers(template: core_pb2.PodTemplateSpec) -> list[str]:
    return [
        _join([c.name for c in template.spec.containers]),
        _join([c.image for c in template.spec.containers]),
    ]


def _ts_set(ts: Timestamp) -> bool:
    return bool(ts.seconds or ts.nanos)


def _age_or(ts: Timestamp, now: dt.datetime, empty: str = NONE) -> str:
    return age(ts, now) if _ts_set(ts) else empty


def _optional(message: Message, field: str, default: int = 0) -> int:
    value: int = getattr(message, field) if message.HasField(field) else default
    return value


# ---------------------------------------------------------------------- workloads


def _pod(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.Pod)
    summary = summarize(obj)
    cells = [
        summary.ready,
        summary.status,
        restarts_cell(summary, now),
        age(obj.metadata.creation_timestamp, now),
    ]
    wide = [
        obj.status.pod_ip or NONE,
        obj.spec.node_name or NONE,
        obj.status.nominated_node_name or NONE,
        NONE,
    ]
    return cells, wide


def _deployment(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, apps_pb2.Deployment)
    desired = _optional(obj.spec, "replicas", 1)
    status = obj.status
    cells = [
        f"{status.ready_replicas}/{desired}",
        str(status.updated_replicas),
        str(status.available_replicas),
        age(obj.metadata.creation_timestamp, now),
    ]
    wide = [*_containers(obj.spec.template), format_selector(obj.spec.selector)]
    return cells, wide


def _replicaset(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, apps_pb2.ReplicaSet)
    desired = _optional(obj.spec, "replicas", 1)
    cells = [
        str(desired),
        str(obj.status.replicas),
        str(obj.status.ready_replicas),
        age(obj.metadata.creation_timestamp, now),
    ]
    return cells, [*_containers(obj.spec.template), format_selector(obj.spec.selector)]


def _replicationcontroller(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.ReplicationController)
    desired = _optional(obj.spec, "replicas", 1)
    cells = [
        str(desired),
        str(obj.status.replicas),
        str(obj.status.ready_replicas),
        age(obj.metadata.creation_timestamp, now),
    ]
    selector = str(labels.from_set(obj.spec.selector)) or NONE
    return cells, [*_containers(obj.spec.template), selector]


def _daemonset(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, apps_pb2.DaemonSet)
    status = obj.status
    cells = [
        str(status.desired_number_scheduled),
        str(status.current_number_scheduled),
        str(status.number_ready),
        str(status.updated_number_scheduled),
        str(status.number_available),
        format_labels(obj.spec.template.spec.node_selector),
        age(obj.metadata.creation_timestamp, now),
    ]
    return cells, [*_containers(obj.spec.template), format_selector(obj.spec.selector)]


def _statefulset(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, apps_pb2.StatefulSet)
    desired = _optional(obj.spec, "replicas", 1)
    cells = [f"{obj.status.ready_replicas}/{desired}", age(obj.metadata.creation_timestamp, now)]
    return cells, _containers(obj.spec.template)


def _job_status(job: batch_pb2.Job) -> str:
    for wanted in ("Failed", "Complete", "Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if any(c.type == wanted and c.status == "True" for c in job.status.conditions):
            return wanted
    return "Terminating" if job.metadata.HasField("deletion_timestamp") else "Running"


def _job(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, batch_pb2.Job)
    spec, status = obj.spec, obj.status
    if spec.HasField("completions"):
        completions = f"{status.succeeded}/{spec.completions}"
    elif _optional(spec, "parallelism") > 1:
        completions = f"{status.succeeded}/1 of {spec.parallelism}"
    else:
        completions = f"{status.succeeded}/1"
    duration = ""
    if _ts_set(status.start_time):
        start = status.start_time.ToDatetime(tzinfo=dt.UTC)
        end = status.completion_time.ToDatetime(tzinfo=dt.UTC) if _ts_set(status.completion_time) else now
        duration = human_duration((end - start).total_seconds())
    cells = [_job_status(obj), completions, duration, age(obj.metadata.creation_timestamp, now)]
    return cells, [
        *_containers(spec.template),
        format_selector(spec.selector if spec.HasField("selector") else None),
    ]


def _cronjob(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, batch_pb2.CronJob)
    spec = obj.spec
    cells = [
        spec.schedule,
        spec.time_zone if spec.HasField("time_zone") else NONE,
        "True" if spec.suspend else "False",
        str(len(obj.status.active)),
        _age_or(obj.status.last_schedule_time, now),
        age(obj.metadata.creation_timestamp, now),
    ]
    template = spec.job_template.spec
    selector = template.selector if template.HasField("selector") else None
    return cells, [*_containers(template.template), format_selector(selector)]


def _hpa(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, autoscaling_pb2.HorizontalPodAutoscaler)
    spec, status = obj.spec, obj.status
    reference = f"{spec.scale_target_ref.kind}/{spec.scale_target_ref.name}"
    target = (
        f"{spec.target_cpu_utilization_percentage}%"
        if spec.HasField("target_cpu_utilization_percentage")
        else ""
    )
    current = (
        f"{status.current_cpu_utilization_percentage}%"
        if status.HasField("current_cpu_utilization_percentage")
        else UNKNOWN
    )
    targets = f"{current}/{target}" if target else NONE
    min_pods = str(spec.min_replicas) if spec.HasField("min_replicas") else "<unset>"
    cells = [
        reference,
        targets,
        min_pods,
        str(spec.max_replicas),
        str(status.current_replicas),
        age(obj.metadata.creation_timestamp, now),
    ]
    return cells, []


def _int_or_string(value: meta_pb2.IntOrString) -> str:
    which = value.WhichOneof("value")
    if which is None:
        return "N/A"
    return str(value.int_val) if which == "int_val" else value.str_val


def _pdb(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, policy_pb2.PodDisruptionBudget)
    cells = [
        _int_or_string(obj.spec.min_available),
        _int_or_string(obj.spec.max_unavailable),
        str(obj.status.disruptions_allowed),
        age(obj.metadata.creation_timestamp, now),
    ]
    return cells, []


def _controller_revision(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, apps_pb2.ControllerRevision)
    owner = next((r for r in obj.metadata.owner_references if r.controller), None)
    controller = NONE
    if owner is not None:
        group = owner.api_version.split("/")[0] if "/" in owner.api_version else ""
        controller = f"{owner.kind.lower()}{'.' + group if group else ''}/{owner.name}"
    return [controller, str(obj.revision), age(obj.metadata.creation_timestamp, now)], []


def _csr(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, certificates_pb2.CertificateSigningRequest)
    spec = obj.spec
    duration = human_duration(spec.expiration_seconds) if spec.HasField("expiration_seconds") else NONE
    conditions = [c.type for c in obj.status.conditions]
    if obj.status.certificate and "Approved" in conditions:
        conditions.append("Issued")
    cells = [
        age(obj.metadata.creation_timestamp, now),
        spec.signer_name,
        spec.username,
        duration,
        ",".join(conditions) or "Pending",
    ]
    return cells, []


# ---------------------------------------------------------------------- services and networking


def _port_string(ports: Sequence[core_pb2.ServicePort]) -> str:
    pieces = []
    for port in ports:
        if port.node_port > 0:
            pieces.append(f"{port.port}:{port.node_port}/{port.protocol}")
        else:
            pieces.append(f"{port.port}/{port.protocol}")
    return ",".join(pieces)


def _load_balancer(status: core_pb2.LoadBalancerStatus, wide: bool) -> str:
    text = ",".join(i.ip or i.hostname for i in status.ingress if i.ip or i.hostname)
    if not wide and len(text) > 16:
        return text[:13] + "..."
    return text


def _external_ip(svc: core_pb2.Service, wide: bool) -> str:
    kind = svc.spec.type or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return _join(svc.spec.external_ips) or NONE
    if kind == "LoadBalancer":
        balancers = _load_balancer(svc.status.load_balancer, wide)
        if svc.spec.external_ips:
            return _join([*filter(None, balancers.split(",")), *svc.spec.external_ips])
        return balancers or "<pending>"
    if kind == "ExternalName":
        return svc.spec.external_name
    return UNKNOWN


def _service(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.Service)
    cells = [
        obj.spec.type or "ClusterIP",
        obj.spec.cluster_ip or NONE,
        _external_ip(obj, wide=False),
        _port_string(obj.spec.ports) or NONE,
        age(obj.metadata.creation_timestamp, now),
    ]
    return cells, [format_labels(obj.spec.selector)]


def format_endpoints(
    endpoints: core_pb2.Endpoints, port_names: set[str] | None = None, limit: int = 3
) -> str:
    """`10.0.0.1:80,10.0.0.2:80 + 1 more...` (kubectl's formatEndpoints); describe passes the
    name of the service port it is printing."""
    if not endpoints.subsets:
        return NONE
    shown: list[str] = []
    count = 0
    for subset in endpoints.subsets:
        if not subset.ports:
            count += len(subset.addresses)
            shown.extend(a.ip for a in subset.addresses)
            continue
        for port in subset.ports:
            if port_names is not None and port.name not in port_names:
                continue
            count += len(subset.addresses)
            shown.extend(
                f"[{a.ip}]:{port.port}" if ":" in a.ip else f"{a.ip}:{port.port}" for a in subset.addresses
            )
    text = ",".join(shown[:limit])
    if len(shown) > limit:
        return f"{text} + {count - limit} more..."
    return text


def _endpoints(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.Endpoints)
    return [format_endpoints(obj), age(obj.metadata.creation_timestamp, now)], []


def _ingress(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, networking_pb2.Ingress)
    spec = obj.spec
    hosts = _join([r.host for r in spec.rules if r.host]) or "*"
    address = _load_balancer(obj.status.load_balancer, wide=True)
    ports = "80, 443" if spec.tls else "80"
    klass = spec.ingress_class_name if spec.HasField("ingress_class_name") else NONE
    return [klass, hosts, address, ports, age(obj.metadata.creation_timestamp, now)], []


# ---------------------------------------------------------------------- cluster and configuration


def node_roles(node: core_pb2.Node) -> list[str]:
    roles = set()
    for key, value in node.metadata.labels.items():
        if key.startswith("node-role.kubernetes.io/") and key.removeprefix("node-role.kubernetes.io/"):
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def node_status(node: core_pb2.Node) -> str:
    states = [
        "Ready" if condition.status == "True" else "NotReady"
        for condition in node.status.conditions
        if condition.type == "Ready"
    ][-1:] or ["Unknown"]
    if node.spec.unschedulable:
        states.append("SchedulingDisabled")
    return ",".join(states)


def _address(node: core_pb2.Node, kind: str) -> str:
    return next((a.address for a in node.status.addresses if a.type == kind), NONE)


def _node(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.Node)
    info = obj.status.node_info
    cells = [
        node_status(obj),
        _join(node_roles(obj)) or NONE,
        age(obj.metadata.creation_timestamp, now),
        info.kubelet_version,
    ]
    wide = [
        _address(obj, "InternalIP"),
        _address(obj, "ExternalIP"),
        info.os_image or UNKNOWN,
        info.kernel_version or UNKNOWN,
        info.container_runtime_version or UNKNOWN,
    ]
    return cells, wide


def _namespace(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.Namespace)
    return [obj.status.phase, age(obj.metadata.creation_timestamp, now)], []


def _configmap(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.ConfigMap)
    return [str(len(obj.data) + len(obj.binary_data)), age(obj.metadata.creation_timestamp, now)], []


def _secret(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.Secret)
    return [obj.type, str(len(obj.data)), age(obj.metadata.creation_timestamp, now)], []


def _serviceaccount(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.ServiceAccount)
    return [str(len(obj.secrets)), age(obj.metadata.creation_timestamp, now)], []


def _quota(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.ResourceQuota)
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(obj.spec.hard):
        cell = f"{name}: {obj.status.used.get(name, '0')}/{obj.status.hard.get(name, obj.spec.hard[name])}"
        (limits if name.startswith("limits.") else requests).append(cell)
    return [age(obj.metadata.creation_timestamp, now), ", ".join(requests), ", ".join(limits)], []


def _created_at(obj: Message, now: dt.datetime) -> Cells:
    created = obj.metadata.creation_timestamp  # type: ignore[attr-defined]
    return [created.ToDatetime(tzinfo=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")], []


def _binding(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, (rbac_pb2.RoleBinding, rbac_pb2.ClusterRoleBinding))
    subjects = obj.subjects

    def names(kind: str) -> str:
        if kind == "ServiceAccount":
            return _join([f"{s.namespace}/{s.name}" for s in subjects if s.kind == kind])
        return _join([s.name for s in subjects if s.kind == kind])

    cells = [f"{obj.role_ref.kind}/{obj.role_ref.name}", age(obj.metadata.creation_timestamp, now)]
    return cells, [names("User"), names("Group"), names("ServiceAccount")]


def _priorityclass(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, scheduling_pb2.PriorityClass)
    policy = obj.preemption_policy if obj.HasField("preemption_policy") else "PreemptLowerPriority"
    cells = [
        str(obj.value),
        "true" if obj.global_default else "false",
        age(obj.metadata.creation_timestamp, now),
    ]
    return [*cells, policy], []


def _storageclass(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, storage_pb2.StorageClass)
    cells = [
        obj.provisioner,
        obj.reclaim_policy if obj.HasField("reclaim_policy") else "Delete",
        obj.volume_binding_mode if obj.HasField("volume_binding_mode") else "Immediate",
        "true" if obj.allow_volume_expansion else "false",
        age(obj.metadata.creation_timestamp, now),
    ]
    return cells, []


def _lease(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, coordination_pb2.Lease)
    return [obj.spec.holder_identity, age(obj.metadata.creation_timestamp, now)], []


# ---------------------------------------------------------------------- storage

_ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def access_modes(modes: Sequence[str]) -> str:
    return _join([_ACCESS_MODES.get(m, m) for m in modes])


def _pvc(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.PersistentVolumeClaim)
    bound = bool(obj.spec.volume_name)
    cells = [
        "Terminating" if obj.metadata.HasField("deletion_timestamp") else obj.status.phase,
        obj.spec.volume_name,
        obj.status.capacity.get("storage", "") if bound else "",
        access_modes(obj.status.access_modes) if bound else "",
        obj.spec.storage_class_name if obj.spec.HasField("storage_class_name") else "",
        age(obj.metadata.creation_timestamp, now),
    ]
    mode = obj.spec.volume_mode if obj.spec.HasField("volume_mode") else "Filesystem"
    return cells, [mode]


def _pv(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.PersistentVolume)
    claim = ""
    if obj.spec.HasField("claim_ref"):
        claim = f"{obj.spec.claim_ref.namespace}/{obj.spec.claim_ref.name}"
    cells = [
        obj.spec.capacity.get("storage", ""),
        access_modes(obj.spec.access_modes),
        obj.spec.persistent_volume_reclaim_policy,
        "Terminating" if obj.metadata.HasField("deletion_timestamp") else obj.status.phase,
        claim,
        obj.spec.storage_class_name,
        obj.status.reason,
        age(obj.metadata.creation_timestamp, now),
    ]
    mode = obj.spec.volume_mode if obj.spec.HasField("volume_mode") else "Filesystem"
    return cells, [mode]


# ---------------------------------------------------------------------- events


def _micro(ts: Timestamp, now: dt.datetime) -> str:
    return age(ts, now) if _ts_set(ts) else UNKNOWN


def event_times(event: core_pb2.Event, now: dt.datetime) -> tuple[str, str, int]:
    """(last seen, first seen, count) as kubectl prints an event's times."""
    first = _micro(event.first_timestamp if _ts_set(event.first_timestamp) else event.event_time, now)
    last = age(event.last_timestamp, now) if _ts_set(event.last_timestamp) else first
    count = event.count
    if event.HasField("series"):
        last = _micro(event.series.last_observed_time, now)
        count = event.series.count
    elif count > 1:
        last = f"{last} (x{count} over {first})"
    return last, first, count


def _event(obj: Message, now: dt.datetime) -> Cells:
    assert isinstance(obj, core_pb2.Event)
    last, first, count = event_times(obj, now)
    ref = obj.involved_object
    target = f"{ref.kind.lower()}/{ref.name}" if ref.name else ref.kind.lower()
    source = obj.source.component or obj.reporting_component
    host = obj.source.host or obj.reporting_instance
    source_text = f"{source}, {host}" if host else source
    message = obj.message.strip()
    cells = [last, obj.type, obj.reason, target, message]
    wide = [
        last,
        obj.type,
        obj.reason,
        target,
        ref.field_path,
        source_text,
        message,
        first,
        str(count),
        obj.metadata.name,
    ]
    return cells, wide


# ---------------------------------------------------------------------- registry

_AGE = ("AGE",)
_TEMPLATE_WIDE = ("CONTAINERS", "IMAGES", "SELECTOR")

COLUMNS: dict[str, Columns] = {
    "pods": Columns(
        ("READY", "STATUS", "RESTARTS", "AGE"), ("IP", "NODE", "NOMINATED NODE", "READINESS GATES"), _pod
    ),
    "deployments": Columns(("READY", "UP-TO-DATE", "AVAILABLE", "AGE"), _TEMPLATE_WIDE, _deployment),
    "replicasets": Columns(("DESIRED", "CURRENT", "READY", "AGE"), _TEMPLATE_WIDE, _replicaset),
    "replicationcontrollers": Columns(
        ("DESIRED", "CURRENT", "READY", "AGE"), _TEMPLATE_WIDE, _replicationcontroller
    ),
    "daemonsets": Columns(
        ("DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"),
        _TEMPLATE_WIDE,
        _daemonset,
    ),
    "statefulsets": Columns(("READY", "AGE"), ("CONTAINERS", "IMAGES"), _statefulset),
    "jobs": Columns(("STATUS", "COMPLETIONS", "DURATION", "AGE"), _TEMPLATE_WIDE, _job),
    "cronjobs": Columns(
        ("SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"), _TEMPLATE_WIDE, _cronjob
    ),
    "horizontalpodautoscalers": Columns(
        ("REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"), (), _hpa
    ),
    "poddisruptionbudgets": Columns(
        ("MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"), (), _pdb
    ),
    "controllerrevisions": Columns(("CONTROLLER", "REVISION", "AGE"), (), _controller_revision),
    "certificatesigningrequests": Columns(
        ("AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"), (), _csr
    ),
    "services": Columns(("TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"), ("SELECTOR",), _service),
    "endpoints": Columns(("ENDPOINTS", "AGE"), (), _endpoints),
    "ingresses": Columns(("CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"), (), _ingress),
    "nodes": Columns(
        ("STATUS", "ROLES", "AGE", "VERSION"),
        ("INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"),
        _node,
    ),
    "namespaces": Columns(("STATUS", "AGE"), (), _namespace),
    "configmaps": Columns(("DATA", "AGE"), (), _configmap),
    "secrets": Columns(("TYPE", "DATA", "AGE"), (), _secret),
    "serviceaccounts": Columns(("SECRETS", "AGE"), (), _serviceaccount),
    "resourcequotas": Columns(("AGE", "REQUEST", "LIMIT"), (), _quota),
    "limitranges": Columns(("CREATED AT",), (), _created_at),
    "roles": Columns(("CREATED AT",), (), _created_at),
    "clusterroles": Columns(("CREATED AT",), (), _created_at),
    "rolebindings": Columns(("ROLE", "AGE"), ("USERS", "GROUPS", "SERVICEACCOUNTS"), _binding),
    "clusterrolebindings": Columns(("ROLE", "AGE"), ("USERS", "GROUPS", "SERVICEACCOUNTS"), _binding),
    "priorityclasses": Columns(("VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"), (), _priorityclass),
    "storageclasses": Columns(
        ("PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"),
        (),
        _storageclass,
    ),
    "leases": Columns(("HOLDER", "AGE"), (), _lease),
    "persistentvolumeclaims": Columns(
        ("STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "AGE"), ("VOLUMEMODE",), _pvc
    ),
    "persistentvolumes": Columns(
        ("CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS", "REASON", "AGE"),
        ("VOLUMEMODE",),
        _pv,
    ),
    "events": Columns(
        ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"),
        (
            "LAST SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "SUBOBJECT",
            "SOURCE",
            "MESSAGE",
            "FIRST SEEN",
            "COUNT",
            "NAME",
        ),
        _event,
        name_first=False,
    ),
}


def _generic(obj: Message, now: dt.datetime) -> Cells:
    return [age(obj.metadata.creation_timestamp, now)], []  # type: ignore[attr-defined]


GENERIC = Columns(_AGE, (), _generic)


def columns_for(info: KindInfo) -> Columns:
    return COLUMNS.get(info.plural, GENERIC)


@dataclass(frozen=True)
class TableOptions:
    wide: bool = False
    namespace_column: bool = False
    show_labels: bool = False
    label_columns: tuple[str, ...] = ()  # -L: one column per label key
    kind_prefix: str = ""  # "pod/" when several kinds are printed together (`get all`)


def header(info: KindInfo, options: TableOptions) -> list[str]:
    cols = columns_for(info)
    if cols.name_first:
        row = ["NAME", *cols.headers, *(cols.wide if options.wide else ())]
    else:
        row = list(cols.wide if options.wide else cols.headers)
    if options.namespace_column:
        row.insert(0, "NAMESPACE")
    row.extend(key.split("/")[-1].upper() for key in options.label_columns)
    if options.show_labels:
        row.append("LABELS")
    return row


def row(info: KindInfo, obj: Message, options: TableOptions, now: dt.datetime) -> list[str]:
    cols = columns_for(info)
    cells, wide = cols.row(obj, now)
    meta = obj.metadata  # type: ignore[attr-defined]
    if cols.name_first:
        out = [options.kind_prefix + meta.name, *cells, *(wide if options.wide else ())]
    else:
        out = list(wide if options.wide else cells)
    if options.namespace_column:
        out.insert(0, meta.namespace)
    out.extend(meta.labels.get(key, "") for key in options.label_columns)
    if options.show_labels:
        out.append(format_labels(meta.labels))
    return out
