"""`pinctl describe` per kind, in kubectl's layout: pods, nodes, services, deployments,
replica sets, replication controllers and namespaces have their own sections; every other
kind gets the generic form (its fields, spelled as kubectl spells them). Each ends with the
object's events, found with the involvedObject field selector."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.cli import describe_writer as dw
from services.cli.describe_writer import Writer, is_set, timestamp
from services.cli.printers import age, encode
from services.cli.tables import format_endpoints, format_selector, node_roles
from services.client.client import Client
from services.client.errors import NotFoundError
from services.machinery import labels as label_selectors
from services.machinery.kinds import KindInfo
from services.machinery.quantity import Quantity, format_quantity, parse_quantity
from services.machinery.quota import pod_compute

Describer = Callable[[Client, Message, Writer, dt.datetime], Awaitable[None]]


async def related_events(client: Client, info: KindInfo, obj: Message) -> list[core_pb2.Event]:
    meta = obj.metadata  # type: ignore[attr-defined]
    selector = (
        f"involvedObject.kind={info.kind},involvedObject.name={meta.name},involvedObject.uid={meta.uid}"
    )
    if info.namespaced:
        selector += f",involvedObject.namespace={meta.namespace}"
    result = await client.list_all("events", meta.namespace, field_selector=selector)
    return [e for e in result.items if isinstance(e, core_pb2.Event)]


def _header(w: Writer, meta: meta_pb2.ObjectMeta, *, namespaced: bool = True) -> None:
    w.line(0, "Name:", meta.name)
    if namespaced:
        w.line(0, "Namespace:", meta.namespace)


def _controller(meta: meta_pb2.ObjectMeta) -> meta_pb2.OwnerReference | None:
    return next((r for r in meta.owner_references if r.controller), None)


# ---------------------------------------------------------------------- containers


def _ports(ports: Sequence[core_pb2.ContainerPort], host: bool) -> str:
    if not ports:
        return "<none>"
    return ", ".join(f"{p.host_port if host else p.container_port}/{p.protocol or 'TCP'}" for p in ports)


def _state(w: Writer, title: str, state: core_pb2.ContainerState) -> None:
    if state.HasField("running"):
        w.line(2, f"{title}:", "Running")
        w.line(3, "Started:", timestamp(state.running.started_at))
    elif state.HasField("waiting"):
        w.line(2, f"{title}:", "Waiting")
        if state.waiting.reason:
            w.line(3, "Reason:", state.waiting.reason)
        if state.waiting.message:
            w.line(3, "Message:", state.waiting.message)
    elif state.HasField("terminated"):
        term = state.terminated
        w.line(2, f"{title}:", "Terminated")
        if term.reason:
            w.line(3, "Reason:", term.reason)
        if term.message:
            w.line(3, "Message:", term.message)
        w.line(3, "Exit Code:", term.exit_code)
        if term.signal:
            w.line(3, "Signal:", term.signal)
        w.line(3, "Started:", timestamp(term.started_at))
        w.line(3, "Finished:", timestamp(term.finished_at))
    else:
        w.line(2, f"{title}:", "Waiting")


def _probe(probe: core_pb2.Probe) -> str:
    if probe.HasField("http_get"):
        get = probe.http_get
        port = get.port.int_val if get.port.WhichOneof("value") == "int_val" else get.port.str_val
        target = f"http-get {(get.scheme or 'HTTP').lower()}://{get.host}:{port}{get.path}"
    elif probe.HasField("tcp_socket"):
        sock = probe.tcp_socket
        port = sock.port.int_val if sock.port.WhichOneof("value") == "int_val" else sock.port.str_val
        target = f"tcp-socket {sock.host}:{port}"
    elif probe.HasField("exec"):
        target = f"exec [{' '.join(probe.exec.command)}]"
    else:
        target = "unknown"
    return (
        f"{target} delay={probe.initial_delay_seconds}s timeout={probe.timeout_seconds}s "
        f"period={probe.period_seconds}s #success={probe.success_threshold} "
        f"#failure={probe.failure_threshold}"
    )


def _env(w: Writer, container: core_pb2.Container) -> None:
    if container.env_from:
        w.write(2, "Environment Variables from:\n")
        for source in container.env_from:
            if source.HasField("config_map_ref"):
                kind, name, optional = "ConfigMap", source.config_map_ref.name, source.config_map_ref.optional
            else:
                kind, name, optional = "Secret", source.secret_ref.name, source.secret_ref.optional
            prefix = f" with prefix '{source.prefix}'" if source.prefix else ""
            w.line(3, name, f"{kind}{prefix}  Optional: {'true' if optional else 'false'}")
    if not container.env:
        w.line(2, "Environment:", "<none>")
        return
    w.write(2, "Environment:\n")
    for var in container.env:
        value_from = var.value_from
        if not var.HasField("value_from"):
            w.line(3, f"{var.name}:", var.value)
        elif value_from.HasField("field_ref"):
            field_ref = value_from.field_ref
            w.line(3, f"{var.name}:", f" ({field_ref.api_version or 'v1'}:{field_ref.field_path})")
        elif value_from.HasField("resource_field_ref"):
            ref = value_from.resource_field_ref
            w.line(3, f"{var.name}:", f"{ref.resource} ({ref.container_name or container.name})")
        elif value_from.HasField("secret_key_ref"):
            secret = value_from.secret_key_ref
            w.line(3, f"{var.name}:", f"<set to the key '{secret.key}' in secret '{secret.name}'>")
        else:
            config = value_from.config_map_key_ref
            w.line(3, f"{var.name}:", f"<set to the key '{config.key}' of config map '{config.name}'>")


def _containers(
    w: Writer,
    title: str,
    containers: Sequence[core_pb2.Container],
    statuses: Sequence[core_pb2.ContainerStatus] | None,
    space: str = "",
) -> None:
    w.write(0, f"{space}{title}:\n")
    by_name = {s.name: s for s in statuses or ()}
    for container in containers:
        status = by_name.get(container.name)
        w.write(1, f"{' ' if space else ''}{container.name}:\n")
        if status is not None:
            w.line(2, "Container ID:", status.container_id)
        w.line(2, "Image:", container.image)
        if status is not None:
            w.line(2, "Image ID:", status.image_id)
        plural = "s" if len(container.ports) > 1 else ""
        w.line(2, f"Port{plural}:", _ports(container.ports, host=False))
        w.line(2, f"Host Port{plural}:", _ports(container.ports, host=True) if container.ports else "<none>")
        for label, values in (("Command", container.command), ("Args", container.args)):
            if values:
                w.write(2, f"{label}:\n")
                for value in values:
                    w.write(3, value.replace("\n", "\n" + "  " * 3) + "\n")
        if status is not None:
            _state(w, "State", status.state)
            if status.last_state.ByteSize():
                _state(w, "Last State", status.last_state)
            w.line(2, "Ready:", "True" if status.ready else "False")
            w.line(2, "Restart Count:", status.restart_count)
        for label, amounts in (
            ("Limits", container.resources.limits),
            ("Requests", container.resources.requests),
        ):
            if amounts:
                w.write(2, f"{label}:\n")
                for name in sorted(amounts):
                    w.line(3, f"{name}:", amounts[name])
        for label, field in (
            ("Liveness", "liveness_probe"),
            ("Readiness", "readiness_probe"),
            ("Startup", "startup_probe"),
        ):
            if container.HasField(field):
                w.line(2, f"{label}:", _probe(getattr(container, field)))
        _env(w, container)
        if not container.volume_mounts:
            w.line(2, "Mounts:", "<none>")
        else:
            w.write(2, "Mounts:\n")
            for mount in sorted(container.volume_mounts, key=lambda m: m.mount_path):
                flags = ["ro" if mount.read_only else "rw"]
                if mount.sub_path:
                    flags.append(f'path="{mount.sub_path}"')
                w.line(3, f"{mount.mount_path} from {mount.name} ({','.join(flags)})")


def _volumes(w: Writer, volumes: Sequence[core_pb2.Volume], space: str = "") -> None:
    if not volumes:
        w.line(0, f"{space}Volumes:", "<none>")
        return
    w.write(0, f"{space}Volumes:\n")
    for volume in volumes:
        w.write(1, f"{space}{volume.name}:\n")
        if volume.HasField("empty_dir"):
            w.line(2, "Type:", "EmptyDir (a temporary directory that shares a pod's lifetime)")
            w.line(2, "Medium:", volume.empty_dir.medium)
            limit = volume.empty_dir.size_limit if volume.empty_dir.HasField("size_limit") else "<unset>"
            w.line(2, "SizeLimit:", limit)
        elif volume.HasField("host_path"):
            w.line(2, "Type:", "HostPath (bare host directory volume)")
            w.line(2, "Path:", volume.host_path.path)
            w.line(2, "HostPathType:", volume.host_path.type)
        elif volume.HasField("secret"):
            w.line(2, "Type:", "Secret (a volume populated by a Secret)")
            w.line(2, "SecretName:", volume.secret.secret_name)
            w.line(2, "Optional:", "true" if volume.secret.optional else "false")
        elif volume.HasField("config_map"):
            w.line(2, "Type:", "ConfigMap (a volume populated by a ConfigMap)")
            w.line(2, "Name:", volume.config_map.name)
            w.line(2, "Optional:", "true" if volume.config_map.optional else "false")
        elif volume.HasField("persistent_volume_claim"):
            claim = volume.persistent_volume_claim
            w.line(
                2,
                "Type:",
                "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)",
            )
            w.line(2, "ClaimName:", claim.claim_name)
            w.line(2, "ReadOnly:", "true" if claim.read_only else "false")
        elif volume.HasField("downward_api"):
            w.line(2, "Type:", "DownwardAPI (a volume populated by information about the pod)")
            w.write(2, "Items:\n")
            for item in volume.downward_api.items:
                source = item.field_ref.field_path or item.resource_field_ref.resource
                w.write(3, f"{source} -> {item.path}\n")
        elif volume.HasField("nfs"):
            w.line(2, "Type:", "NFS (an NFS mount that lasts the lifetime of a pod)")
            w.line(2, "Server:", volume.nfs.server)
            w.line(2, "Path:", volume.nfs.path)
            w.line(2, "ReadOnly:", "true" if volume.nfs.read_only else "false")
        else:
            w.line(2, "Type:", "Projected (a volume that contains injected data from multiple sources)")


def _template(w: Writer, template: core_pb2.PodTemplateSpec) -> None:
    w.write(0, "Pod Template:\n")
    dw.label_lines(w, "Labels", template.metadata.labels, indent="  ")
    if template.metadata.annotations:
        dw.annotation_lines(w, template.metadata.annotations, indent="  ")
    if template.spec.service_account_name:
        w.line(1, "Service Account:", template.spec.service_account_name)
    if template.spec.init_containers:
        _containers(w, "Init Containers", template.spec.init_containers, None, "  ")
    _containers(w, "Containers", template.spec.containers, None, "  ")
    _volumes(w, template.spec.volumes, "  ")
    if template.spec.node_selector:
        dw.label_lines(w, "Node-Selectors", template.spec.node_selector, indent="  ")
    if template.spec.tolerations:
        dw.multiline(
            w, "Tolerations", [dw.toleration_text(t) for t in template.spec.tolerations], indent="  "
        )


# ---------------------------------------------------------------------- pods


async def describe_pod(client: Client, obj: Message, w: Writer, now: dt.datetime) -> None:
    assert isinstance(obj, core_pb2.Pod)
    meta, spec, status = obj.metadata, obj.spec, obj.status
    _header(w, meta)
    if spec.HasField("priority"):
        w.line(0, "Priority:", spec.priority)
    if spec.priority_class_name:
        w.line(0, "Priority Class Name:", spec.priority_class_name)
    w.line(0, "Service Account:", spec.service_account_name)
    node = f"{spec.node_name}/{status.host_ip}" if spec.node_name else "<none>"
    w.line(0, "Node:", node)
    if is_set(status.start_time):
        w.line(0, "Start Time:", timestamp(status.start_time))
    dw.label_lines(w, "Labels", meta.labels)
    dw.annotation_lines(w, meta.annotations)
    if meta.HasField("deletion_timestamp"):
        w.line(0, "Status:", f"Terminating (lasts {age(meta.deletion_timestamp, now)})")
        w.line(0, "Termination Grace Period:", f"{meta.deletion_grace_period_seconds}s")
    else:
        w.line(0, "Status:", status.phase)
    if status.reason:
        w.line(0, "Reason:", status.reason)
    if status.message:
        w.line(0, "Message:", status.message.replace("\n", " "))
    w.line(0, "IP:", status.pod_ip)
    if status.pod_ips:
        w.write(0, "IPs:\n")
        for ip in status.pod_ips:
            w.line(1, "IP:", ip.ip)
    else:
        w.line(0, "IPs:", "<none>")
    owner = _controller(meta)
    if owner is not None:
        w.line(0, "Controlled By:", f"{owner.kind}/{owner.name}")
    if status.nominated_node_name:
        w.line(0, "NominatedNodeName:", status.nominated_node_name)
    if spec.init_containers:
        _containers(w, "Init Containers", spec.init_containers, status.init_container_statuses)
    _containers(w, "Containers", spec.containers, status.container_statuses)
    if status.conditions:
        w.write(0, "Conditions:\n  Type\tStatus\n")
        for condition in status.conditions:
            w.write(1, f"{condition.type} \t{condition.status} \n")
    _volumes(w, spec.volumes)
    w.line(0, "QoS Class:", status.qos_class)
    dw.label_lines(w, "Node-Selectors", spec.node_selector)
    dw.multiline(w, "Tolerations", [dw.toleration_text(t) for t in spec.tolerations])


# ---------------------------------------------------------------------- nodes


def _percent(amount: Quantity, total: Quantity) -> str:
    return f"{int(amount.value * 100 / total.value) if total.value else 0}%"


async def describe_node(client: Client, obj: Message, w: Writer, now: dt.datetime) -> None:
    assert isinstance(obj, core_pb2.Node)
    meta, spec, status = obj.metadata, obj.spec, obj.status
    _header(w, meta, namespaced=False)
    w.line(0, "Roles:", ",".join(node_roles(obj)) or "<none>")
    dw.label_lines(w, "Labels", meta.labels)
    dw.annotation_lines(w, meta.annotations)
    w.line(0, "CreationTimestamp:", timestamp(meta.creation_timestamp))
    dw.multiline(w, "Taints", [dw.taint_text(t) for t in spec.taints])
    w.line(0, "Unschedulable:", "true" if spec.unschedulable else "false")
    try:
        lease = await client.get("leases", meta.name, "kube-node-lease")
    except NotFoundError:
        lease = None
    if lease is not None:
        lease_spec = lease.spec  # type: ignore[attr-defined]
        w.write(0, "Lease:\n")
        w.line(1, "HolderIdentity:", lease_spec.holder_identity or "<unset>")
        w.line(
            1,
            "AcquireTime:",
            timestamp(lease_spec.acquire_time) if is_set(lease_spec.acquire_time) else "<unset>",
        )
        w.line(
            1, "RenewTime:", timestamp(lease_spec.renew_time) if is_set(lease_spec.renew_time) else "<unset>"
        )
    if status.conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in status.conditions:
            w.line(
                1,
                c.type,
                c.status,
                timestamp(c.last_heartbeat_time),
                timestamp(c.last_transition_time),
                c.reason,
                c.message,
            )
    w.write(0, "Addresses:\n")
    for address in status.addresses:
        w.line(1, f"{address.type}:", address.address)
    for title, amounts in (("Capacity", status.capacity), ("Allocatable", status.allocatable)):
        if amounts:
            w.write(0, f"{title}:\n")
            for name in sorted(amounts):
                w.line(1, f"{name}:", amounts[name])
    info = status.node_info
    w.write(0, "System Info:\n")
    for label, value in (
        ("Machine ID", info.machine_id),
        ("System UUID", info.system_uuid),
        ("Boot ID", info.boot_id),
        ("Kernel Version", info.kernel_version),
        ("OS Image", info.os_image),
        ("Operating System", info.operating_system),
        ("Architecture", info.architecture),
        ("Container Runtime Version", info.container_runtime_version),
        ("Kubelet Version", info.kubelet_version),
        ("Kube-Proxy Version", info.kube_proxy_version),
    ):
        w.line(1, f"{label}:", value)
    if spec.pod_cidr:
        w.line(0, "PodCIDR:", spec.pod_cidr)
        w.line(0, "PodCIDRs:", ",".join(spec.pod_cidrs))
    if spec.provider_id:
        w.line(0, "ProviderID:", spec.provider_id)
    await _node_pods(client, obj, w, now)


async def _node_pods(client: Client, node: core_pb2.Node, w: Writer, now: dt.datetime) -> None:
    listed = await client.list_all(
        "pods",
        "",
        field_selector=f"spec.nodeName={node.metadata.name},status.phase!=Succeeded,status.phase!=Failed",
    )
    pods = [p for p in listed.items if isinstance(p, core_pb2.Pod)]
    allocatable = {k: parse_quantity(v) for k, v in node.status.allocatable.items()}
    zero = parse_quantity("0")
    cpu, memory = allocatable.get("cpu", zero), allocatable.get("memory", zero)
    w.line(0, "Non-terminated Pods:", f"({len(pods)} in total)")
    w.write(1, "Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
    w.write(1, "---------\t----\t------------\t----------\t---------------\t-------------\t---\n")
    totals: dict[str, Quantity] = {}
    for pod in pods:
        usage = pod_compute(pod)
        cells = []
        for key, whole in (
            ("requests.cpu", cpu),
            ("limits.cpu", cpu),
            ("requests.memory", memory),
            ("limits.memory", memory),
        ):
            amount = usage.get(key, zero)
            totals[key] = totals.get(key, zero) + amount
            cells.append(f"{format_quantity(amount)} ({_percent(amount, whole)})")
        w.line(
            1, pod.metadata.namespace, pod.metadata.name, *cells, age(pod.metadata.creation_timestamp, now)
        )
    w.write(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n")
    w.write(1, "Resource\tRequests\tLimits\n")
    w.write(1, "--------\t--------\t------\n")
    for name, whole in (("cpu", cpu), ("memory", memory)):
        requests, limits = totals.get(f"requests.{name}", zero), totals.get(f"limits.{name}", zero)
        w.line(
            1,
            name,
            f"{format_quantity(requests)} ({_percent(requests, whole)})",
            f"{format_quantity(limits)} ({_percent(limits, whole)})",
        )


# ---------------------------------------------------------------------- services


def _target_port(port: core_pb2.ServicePort) -> str:
    target = port.target_port
    return str(target.int_val) if target.WhichOneof("value") == "int_val" else target.str_val


async def describe_service(client: Client, obj: Message, w: Writer, now: dt.datetime) -> None:
    assert isinstance(obj, core_pb2.Service)
    meta, spec = obj.metadata, obj.spec
    try:
        endpoints: core_pb2.Endpoints | None = await client.get("endpoints", meta.name, meta.namespace)  # type: ignore[assignment]
    except NotFoundError:
        endpoints = None
    _header(w, meta)
    dw.label_lines(w, "Labels", meta.labels)
    dw.annotation_lines(w, meta.annotations)
    w.line(0, "Selector:", ",".join(f"{k}={v}" for k, v in sorted(spec.selector.items())))
    w.line(0, "Type:", spec.type or "ClusterIP")
    if spec.type == "ExternalName":
        w.line(0, "External Name:", spec.external_name)
    else:
        w.line(0, "IP:", spec.cluster_ip or "None")
        if spec.cluster_ips:
            w.line(0, "IPs:", ",".join(spec.cluster_ips))
    if spec.external_ips:
        w.line(0, "External IPs:", ",".join(spec.external_ips))
    ingress = [i.ip or i.hostname for i in obj.status.load_balancer.ingress]
    if ingress:
        w.line(0, "LoadBalancer Ingress:", ", ".join(ingress))
    for port in spec.ports:
        name = port.name or "<unset>"
        w.line(0, "Port:", name, f"{port.port}/{port.protocol}")
        w.line(0, "TargetPort:", f"{_target_port(port)}/{port.protocol}")
        if port.node_port:
            w.line(0, "NodePort:", name, f"{port.node_port}/{port.protocol}")
        w.line(0, "Endpoints:", format_endpoints(endpoints or core_pb2.Endpoints(), {port.name}))
    w.line(0, "Session Affinity:", spec.session_affinity or "None")
    if spec.type in ("NodePort", "LoadBalancer"):
        w.line(0, "External Traffic Policy:", spec.external_traffic_policy or "Cluster")
    if spec.health_check_node_port:
        w.line(0, "HealthCheck NodePort:", spec.health_check_node_port)


# ---------------------------------------------------------------------- workloads


async def _owned(client: Client, kind: str, owner: Message) -> list[Message]:
    meta = owner.metadata  # type: ignore[attr-defined]
    listed = await client.list_all(kind, meta.namespace)
    return [
        o
        for o in listed.items
        if any(r.uid == meta.uid and r.controller for r in o.metadata.owner_references)  # type: ignore[attr-defined]
    ]


def _conditions(w: Writer, conditions: Sequence[Any]) -> None:
    if not conditions:
        return
    w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
    w.write(1, "----\t------\t------\n")
    for c in conditions:
        w.line(1, c.type, c.status, c.reason)


def _without_hash(template: core_pb2.PodTemplateSpec) -> core_pb2.PodTemplateSpec:
    copy = core_pb2.PodTemplateSpec()
    copy.CopyFrom(template)
    copy.metadata.labels.pop("pod-template-hash", None)
    return copy


def _replica_sets_line(sets: Sequence[apps_pb2.ReplicaSet]) -> str:
    if not sets:
        return "<none>"
    return ", ".join(
        f"{rs.metadata.name} ({rs.status.replicas}/{rs.spec.replicas} replicas created)" for rs in sets
    )


async def describe_deployment(client: Client, obj: Message, w: Writer, now: dt.datetime) -> None:
    assert isinstance(obj, apps_pb2.Deployment)
    meta, spec, status = obj.metadata, obj.spec, obj.status
    _header(w, meta)
    w.line(0, "CreationTimestamp:", timestamp(meta.creation_timestamp))
    dw.label_lines(w, "Labels", meta.labels)
    dw.annotation_lines(w, meta.annotations)
    w.line(0, "Selector:", format_selector(spec.selector))
    desired = spec.replicas if spec.HasField("replicas") else 1
    w.line(
        0,
        "Replicas:",
        f"{desired} desired | {status.updated_replicas} updated | {status.replicas} total | "
        f"{status.available_replicas} available | {status.unavailable_replicas} unavailable",
    )
    w.line(0, "StrategyType:", spec.strategy.type)
    w.line(0, "MinReadySeconds:", spec.min_ready_seconds)
    if spec.strategy.HasField("rolling_update"):
        rolling = spec.strategy.rolling_update

        def text(value: meta_pb2.IntOrString) -> str:
            return str(value.int_val) if value.WhichOneof("value") == "int_val" else value.str_val

        w.line(
            0,
            "RollingUpdateStrategy:",
            f"{text(rolling.max_unavailable)} max unavailable, {text(rolling.max_surge)} max surge",
        )
    _template(w, spec.template)
    _conditions(w, status.conditions)
    sets = [rs for rs in await _owned(client, "replicasets", obj) if isinstance(rs, apps_pb2.ReplicaSet)]
    new = [rs for rs in sets if _without_hash(rs.spec.template) == _without_hash(spec.template)]
    old = [rs for rs in sets if rs not in new and rs.spec.replicas > 0]
    w.line(0, "OldReplicaSets:", _replica_sets_line(old))
    w.line(0, "NewReplicaSet:", _replica_sets_line(new[:1]))


async def _pods_status(client: Client, owner: Message) -> str:
    phases = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    for pod in await _owned(client, "pods", owner):
        phase = pod.status.phase  # type: ignore[attr-defined]
        if phase in phases:
            phases[phase] += 1
    return (
        f"{phases['Running']} Running / {phases['Pending']} Waiting / "
        f"{phases['Succeeded']} Succeeded / {phases['Failed']} Failed"
    )


async def describe_replicas(client: Client, obj: Message, w: Writer, now: dt.datetime) -> None:
    """ReplicaSets and ReplicationControllers."""
    assert isinstance(obj, (apps_pb2.ReplicaSet, core_pb2.ReplicationController))
    meta, spec, status = obj.metadata, obj.spec, obj.status
    _header(w, meta)
    if isinstance(obj, apps_pb2.ReplicaSet):
        w.line(0, "Selector:", format_selector(obj.spec.selector))
    else:
        w.line(0, "Selector:", str(label_selectors.from_set(obj.spec.selector)))
    dw.label_lines(w, "Labels", meta.labels)
    dw.annotation_lines(w, meta.annotations)
    owner = _controller(meta)
    if owner is not None:
        w.line(0, "Controlled By:", f"{owner.kind}/{owner.name}")
    desired = spec.replicas if spec.HasField("replicas") else 1
    w.line(0, "Replicas:", f"{status.replicas} current / {desired} desired")
    w.line(0, "Pods Status:", await _pods_status(client, obj))
    _template(w, spec.template)
    _conditions(w, status.conditions)


# ---------------------------------------------------------------------- namespaces


async def describe_namespace(client: Client, obj: Message, w: Writer, now: dt.datetime) -> None:
    assert isinstance(obj, core_pb2.Namespace)
    _header(w, obj.metadata, namespaced=False)
    dw.label_lines(w, "Labels", obj.metadata.labels)
    dw.annotation_lines(w, obj.metadata.annotations)
    w.line(0, "Status:", obj.status.phase)
    quotas = (await client.list_all("resourcequotas", obj.metadata.name)).items
    limits = (await client.list_all("limitranges", obj.metadata.name)).items
    w.write(0, "\n")
    if not quotas:
        w.write(0, "No resource quota.\n")
    else:
        w.write(0, "Resource Quotas\n")
        for quota in quotas:
            assert isinstance(quota, core_pb2.ResourceQuota)
            w.line(1, "Name:", quota.metadata.name)
            w.write(1, "Resource\tUsed\tHard\n")
            w.write(1, "--------\t---\t---\n")
            for name in sorted(quota.status.hard):
                w.line(1, name, quota.status.used.get(name, "0"), quota.status.hard[name])
    w.write(0, "\n")
    if not limits:
        w.write(0, "No LimitRange resource.\n")
    else:
        w.write(0, "Resource Limits\n")
        w.write(1, "Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio\n")
        w.write(1, "----\t--------\t---\t---\t---------------\t-------------\t-----------------------\n")
        for limit_range in limits:
            assert isinstance(limit_range, core_pb2.LimitRange)
            for item in limit_range.spec.limits:
                names = sorted({*item.min, *item.max, *item.default, *item.default_request})
                for name in names:
                    w.line(
                        1,
                        item.type,
                        name,
                        item.min.get(name, "-"),
                        item.max.get(name, "-"),
                        item.default_request.get(name, "-"),
                        item.default.get(name, "-"),
                        item.max_limit_request_ratio.get(name, "-"),
                    )


# ---------------------------------------------------------------------- every other kind


def _label_for(key: str) -> str:
    """kubectl's smartLabelFor: `matchLabels` -> `Match Labels`, `podIP` -> `Pod IP`."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|$)|[A-Z]?[a-z0-9]+|[A-Z]+", key)
    return " ".join(w[:1].upper() + w[1:] for w in words) if words else key


def _generic_value(w: Writer, level: int, key: str, value: Any) -> None:
    if isinstance(value, dict):
        w.write(level, f"{key}:\n")
        for child in sorted(value):
            label = child if key in ("Labels", "Annotations", "Data", "Match Labels") else _label_for(child)
            _generic_value(w, level + 1, label, value[child])
    elif isinstance(value, list):
        w.write(level, f"{key}:\n")
        for item in value:
            if isinstance(item, dict):
                for child in sorted(item):
                    _generic_value(w, level + 1, _label_for(child), item[child])
            else:
                w.write(level + 1, f"{item}\n")
    else:
        text = "true" if value is True else "false" if value is False else str(value)
        w.line(level, f"{key}:", text)


async def describe_generic(client: Client, obj: Message, w: Writer, now: dt.datetime) -> None:
    document = encode(obj)
    meta = document.pop("metadata", {})
    w.line(0, "Name:", meta.get("name", ""))
    if meta.get("namespace"):
        w.line(0, "Namespace:", meta["namespace"])
    dw.label_lines(w, "Labels", obj.metadata.labels)  # type: ignore[attr-defined]
    dw.annotation_lines(w, obj.metadata.annotations)  # type: ignore[attr-defined]
    w.line(0, "API Version:", document.pop("apiVersion"))
    w.line(0, "Kind:", document.pop("kind"))
    for key in sorted(document):
        _generic_value(w, 0, _label_for(key), document[key])


DESCRIBERS: dict[str, Describer] = {
    "pods": describe_pod,
    "nodes": describe_node,
    "services": describe_service,
    "deployments": describe_deployment,
    "replicasets": describe_replicas,
    "replicationcontrollers": describe_replicas,
    "namespaces": describe_namespace,
}


# kubectl's namespace description has no Events section.
_WITHOUT_EVENTS = ("namespaces",)


async def describe(
    client: Client, info: KindInfo, obj: Message, now: dt.datetime, *, events: bool = True
) -> str:
    w = Writer()
    await DESCRIBERS.get(info.plural, describe_generic)(client, obj, w, now)
    if events and info.plural not in _WITHOUT_EVENTS:
        dw.events(w, await related_events(client, info, obj), now)
    return w.render()
