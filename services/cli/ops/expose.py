"""`expose`: the Service kubectl's expose generates for a pod, service, replication
controller, replica set or deployment: its selector from the object's pods, its ports from
the object's container ports unless --port names one, its labels from the object."""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.ops.objects import meta_of, pod_template_of
from services.cli.ops.rollout import group_kind
from services.cli.ops.run import parse_labels
from services.machinery.kinds import KindInfo

EXPOSABLE = (
    ("", "Pod"),
    ("", "Service"),
    ("", "ReplicationController"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
)
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
PROTOCOLS = ("TCP", "UDP", "SCTP")
DNS1035_MAX = 63


@dataclass
class ExposeSpec:
    port: str = ""
    target_port: str = ""
    protocol: str = ""
    type: str = ""
    name: str = ""
    selector: str = ""
    labels: str = ""
    cluster_ip: str = ""
    external_ips: list[str] = field(default_factory=list)
    session_affinity: str = ""


def check_exposable(info: KindInfo) -> None:
    if (info.group, info.kind) not in EXPOSABLE:
        raise CLIError(f"cannot expose a {group_kind(info)}")


def selector_of(obj: Message) -> dict[str, str]:
    """kubectl's MapBasedSelectorForObject."""
    if isinstance(obj, core_pb2.Pod):
        if not obj.metadata.labels:
            raise CLIError("the pod has no labels and cannot be exposed")
        return dict(obj.metadata.labels)
    if isinstance(obj, core_pb2.Service):
        if not obj.spec.selector:
            raise CLIError("the service has no pod selector set")
        return dict(obj.spec.selector)
    if isinstance(obj, core_pb2.ReplicationController):
        return dict(obj.spec.selector)
    if isinstance(obj, (apps_pb2.Deployment, apps_pb2.ReplicaSet)):
        selector = obj.spec.selector
        if selector.match_expressions:
            raise CLIError(
                "couldn't convert expressions - "
                f'"{list(selector.match_expressions)}" to map-based selector format'
            )
        return dict(selector.match_labels)
    raise CLIError(f"cannot extract pod selector from {type(obj).__name__}")


def _containers(obj: Message) -> list[core_pb2.Container]:
    if isinstance(obj, core_pb2.Pod):
        return list(obj.spec.containers)
    template = pod_template_of(obj)
    return list(template.spec.containers) if template is not None else []


def ports_of(obj: Message) -> list[tuple[int, str]]:
    """(port, protocol) of every container port, or of every port of a service."""
    if isinstance(obj, core_pb2.Service):
        return [(p.port, p.protocol or "TCP") for p in obj.spec.ports]
    return [(p.container_port, p.protocol or "TCP") for c in _containers(obj) for p in c.ports]


def _int_or_name(value: str) -> tuple[int | None, str]:
    try:
        return int(value), ""
    except ValueError:
        return None, value


def build_service(obj: Message, spec: ExposeSpec) -> core_pb2.Service:
    meta = meta_of(obj)
    name = spec.name or meta.name[:DNS1035_MAX]
    if spec.type and spec.type not in SERVICE_TYPES:
        raise CLIError(
            f"invalid service type {spec.type!r}: must be one of {', '.join(SERVICE_TYPES)}", EXIT_USAGE
        )
    if spec.protocol and spec.protocol not in PROTOCOLS:
        raise CLIError(
            f"invalid protocol {spec.protocol!r}: must be one of {', '.join(PROTOCOLS)}", EXIT_USAGE
        )
    try:
        selector = parse_labels(spec.selector) if spec.selector else selector_of(obj)
    except CLIError as exc:
        raise CLIError(
            f"couldn't retrieve selectors via --selector flag or introspection: {exc.message}"
        ) from None
    headless = spec.cluster_ip == "None"
    if spec.port:
        port, _ = _int_or_name(spec.port)
        if port is None:
            raise CLIError(f'invalid port "{spec.port}": must be a number', EXIT_USAGE)
        ports = [(port, "")]
    else:
        ports = ports_of(obj)
        if not ports and not headless:
            raise CLIError("couldn't find port via --port flag or introspection", EXIT_USAGE)
    service = core_pb2.Service()
    service.metadata.name = name
    service.metadata.namespace = meta.namespace
    service.metadata.labels.update(parse_labels(spec.labels) if spec.labels else dict(meta.labels))
    service.spec.selector.update(selector)
    for index, (port, protocol) in enumerate(ports):
        entry = service.spec.ports.add(port=port, protocol=spec.protocol or protocol or "TCP")
        if len(ports) > 1:
            entry.name = f"port-{index + 1}"
        if spec.target_port:
            number, port_name = _int_or_name(spec.target_port)
            if number is not None:
                entry.target_port.int_val = number
            else:
                entry.target_port.str_val = port_name
        else:
            entry.target_port.int_val = port
    if spec.type:
        service.spec.type = spec.type
    if spec.cluster_ip:
        service.spec.cluster_ip = spec.cluster_ip
    service.spec.external_ips.extend(spec.external_ips)
    if spec.session_affinity:
        service.spec.session_affinity = spec.session_affinity
    return service
