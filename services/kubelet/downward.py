"""The downward API: pod fields and container resources as strings, shared by environment
variables (fieldRef/resourceFieldRef) and downwardAPI volume files, so both read a field the
same way and reject the same unsupported paths."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from pinnace.api.core.v1 import core_pb2
from services.machinery.quantity import parse_quantity

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class DownwardError(ValueError):
    """The pod asks for a field or resource the kubelet cannot provide."""


def _format_map(values: Mapping[str, str]) -> str:
    """Kubernetes' FormatMap: key="value" lines, sorted, with Go's %q quoting of the value."""
    lines = []
    for key in sorted(values):
        value = values[key].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'{key}="{value}"')
    return "\n".join(lines)


def field_value(pod: core_pb2.Pod, path: str, pod_ip: str = "", host_ip: str = "") -> str:
    meta = pod.metadata
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        source = meta.labels if subscript.group(1) == "labels" else meta.annotations
        return source.get(subscript.group(2), "")
    simple: dict[str, str] = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "spec.nodeName": pod.spec.node_name,
        "spec.serviceAccountName": pod.spec.service_account_name,
        "status.hostIP": host_ip or pod.status.host_ip,
        "status.hostIPs": host_ip or pod.status.host_ip,
        "status.podIP": pod_ip or pod.status.pod_ip,
        "status.podIPs": pod_ip or pod.status.pod_ip,
    }
    if path in simple:
        return simple[path]
    if path == "metadata.labels":
        return _format_map(meta.labels)
    if path == "metadata.annotations":
        return _format_map(meta.annotations)
    raise DownwardError(f'unsupported fieldPath "{path}"')


def resource_value(
    pod: core_pb2.Pod,
    default_container: str,
    selector: core_pb2.ResourceFieldSelector,
    allocatable: Mapping[str, str],
) -> str:
    """limits.cpu, requests.memory...: the container's value (a limit defaults to the node's
    allocatable), divided by the divisor and rounded up, as Kubernetes does."""
    name = selector.container_name or default_container
    container = next((c for c in (*pod.spec.containers, *pod.spec.init_containers) if c.name == name), None)
    if container is None:
        raise DownwardError(f'container "{name}" not found for resourceFieldRef')
    kind, _, resource = selector.resource.partition(".")
    if kind not in ("limits", "requests") or resource not in ("cpu", "memory", "ephemeral-storage"):
        raise DownwardError(f'unsupported resource "{selector.resource}"')
    values = container.resources.limits if kind == "limits" else container.resources.requests
    raw = values.get(resource)
    if raw is None and kind == "requests":
        raw = container.resources.limits.get(resource)
    if raw is None:
        raw = allocatable.get(resource, "0")
    divisor = parse_quantity(selector.divisor) if selector.HasField("divisor") and selector.divisor else None
    amount = parse_quantity(raw).value
    if resource == "cpu":
        div = divisor.value if divisor is not None and not divisor.is_zero() else 1
        return str(max(1, math.ceil(amount / div)) if amount else 0)
    div = divisor.value if divisor is not None and not divisor.is_zero() else 1
    return str(math.ceil(amount / div))
