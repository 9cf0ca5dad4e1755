"""Resource quota accounting shared by the ResourceQuota admission plugin (which refuses what
would exceed a quota) and the quota controller (which recomputes status.used): what one
object costs, in Kubernetes' resource names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.machinery.quantity import Quantity, format_quantity, parse_quantity

# The kinds a quota counts, by the plural its object-count resource is named after.
COUNTED = {
    "Pod": "pods",
    "Service": "services",
    "ReplicationController": "replicationcontrollers",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "PersistentVolumeClaim": "persistentvolumeclaims",
}
COMPUTE = ("cpu", "memory")
Usage = dict[str, Quantity]


def _q(value: int | str) -> Quantity:
    return parse_quantity(str(value))


def _sum(into: Usage, resources: Mapping[str, str], prefix: str) -> None:
    for name in COMPUTE:
        if name in resources:
            key = f"{prefix}.{name}"
            into[key] = into.get(key, _q(0)) + parse_quantity(resources[name])


def pod_compute(pod: core_pb2.Pod) -> Usage:
    """requests.* and limits.*: the containers' sum, or an init container's larger need."""
    usage: Usage = {}
    for container in pod.spec.containers:
        _sum(usage, container.resources.requests, "requests")
        _sum(usage, container.resources.limits, "limits")
    for init in pod.spec.init_containers:
        single: Usage = {}
        _sum(single, init.resources.requests, "requests")
        _sum(single, init.resources.limits, "limits")
        for key, value in single.items():
            if value > usage.get(key, _q(0)):
                usage[key] = value
    usage["cpu"] = usage.get("requests.cpu", _q(0))
    usage["memory"] = usage.get("requests.memory", _q(0))
    return usage


def usage_of(obj: Message) -> Usage:
    """What an object counts against quotas; terminal pods count nothing."""
    kind = type(obj).__name__
    plural = COUNTED.get(kind)
    if plural is None:
        return {}
    if isinstance(obj, core_pb2.Pod) and obj.status.phase in ("Succeeded", "Failed"):
        return {}
    usage: Usage = {plural: _q(1), f"count/{plural}": _q(1)}
    if isinstance(obj, core_pb2.Pod):
        usage.update(pod_compute(obj))
    elif isinstance(obj, core_pb2.Service):
        if obj.spec.type in ("NodePort", "LoadBalancer"):
            usage["services.nodeports"] = _q(len(obj.spec.ports))
        if obj.spec.type == "LoadBalancer":
            usage["services.loadbalancers"] = _q(1)
    elif isinstance(obj, core_pb2.PersistentVolumeClaim):
        storage = obj.spec.resources.requests.get("storage")
        if storage:
            usage["requests.storage"] = parse_quantity(storage)
    return usage


def total(objects: Iterable[Message]) -> Usage:
    usage: Usage = {}
    for obj in objects:
        for key, value in usage_of(obj).items():
            usage[key] = usage.get(key, _q(0)) + value
    return usage


def subtract(a: Usage, b: Usage) -> Usage:
    keys = set(a) | set(b)
    return {k: a.get(k, _q(0)) - b.get(k, _q(0)) for k in keys}


def restrict(usage: Usage, hard: Mapping[str, str]) -> dict[str, str]:
    """The usage of exactly the resources a quota limits, as canonical quantity text."""
    return {name: format_quantity(usage.get(name, _q(0))) for name in hard}
