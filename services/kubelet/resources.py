"""A container's resources and security context in CRI terms: requests become CPU shares,
limits become CFS quota and a memory limit, the QoS class sets the OOM score, and the
security context maps field by field (Kubernetes' kuberuntime_container_linux.go)."""

from __future__ import annotations

from collections.abc import Mapping

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri
from services.machinery.quantity import parse_quantity

CPU_PERIOD = 100_000
MIN_SHARES = 2
MAX_SHARES = 262_144


def _milli(values: Mapping[str, str], key: str) -> int | None:
    raw = values.get(key)
    return parse_quantity(raw).milli_value() if raw else None


def _bytes(values: Mapping[str, str], key: str) -> int | None:
    raw = values.get(key)
    return parse_quantity(raw).int_value() if raw else None


def qos_class(pod: core_pb2.Pod) -> str:
    """Guaranteed when every container limits and requests cpu and memory equally, BestEffort
    when none asks for anything, Burstable otherwise."""
    containers = [*pod.spec.containers, *pod.spec.init_containers]
    any_set = False
    guaranteed = True
    for c in containers:
        requests, limits = dict(c.resources.requests), dict(c.resources.limits)
        for res in ("cpu", "memory"):
            req = requests.get(res) or limits.get(res)
            if req or limits.get(res):
                any_set = True
            if not limits.get(res) or parse_quantity(req or "0") != parse_quantity(limits[res]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def oom_score_adj(pod: core_pb2.Pod, container: core_pb2.Container, memory_capacity: int) -> int:
    qos = pod.status.qos_class or qos_class(pod)
    if qos == "Guaranteed":
        return -997
    if qos == "BestEffort":
        return 1000
    request = _bytes(container.resources.requests, "memory") or 0
    if not memory_capacity:
        return 999
    score = 1000 - (1000 * request) // memory_capacity
    return int(min(max(score, 2), 999))


def linux_resources(
    pod: core_pb2.Pod, container: core_pb2.Container, memory_capacity: int
) -> cri.LinuxContainerResources:
    res = container.resources
    cpu_request = _milli(res.requests, "cpu")
    cpu_limit = _milli(res.limits, "cpu")
    if cpu_request is None and cpu_limit is not None:
        cpu_request = cpu_limit
    shares = (
        MIN_SHARES if cpu_request is None else max(MIN_SHARES, min(MAX_SHARES, cpu_request * 1024 // 1000))
    )
    out = cri.LinuxContainerResources(
        cpu_shares=shares, oom_score_adj=oom_score_adj(pod, container, memory_capacity)
    )
    if cpu_limit:
        out.cpu_period = CPU_PERIOD
        out.cpu_quota = max(1000, cpu_limit * CPU_PERIOD // 1000)
    memory = _bytes(res.limits, "memory")
    if memory:
        out.memory_limit_in_bytes = memory
    return out


def security_context(pod: core_pb2.Pod, container: core_pb2.Container) -> cri.LinuxContainerSecurityContext:
    """The container's context over the pod's (runAsUser/Group/NonRoot inherit)."""
    pod_ctx = pod.spec.security_context
    ctx = container.security_context
    out = cri.LinuxContainerSecurityContext(
        namespace_options=cri.NamespaceOption(
            network=cri.NODE if pod.spec.host_network else cri.POD,
            pid=cri.NODE
            if pod.spec.host_pid
            else (cri.POD if pod.spec.share_process_namespace else cri.CONTAINER),
            ipc=cri.NODE if pod.spec.host_ipc else cri.POD,
        ),
        supplemental_groups=list(pod_ctx.supplemental_groups),
    )
    if pod_ctx.HasField("fs_group"):
        out.supplemental_groups.append(pod_ctx.fs_group)
    if ctx.HasField("run_as_user"):
        out.run_as_user.value = ctx.run_as_user
    elif pod_ctx.HasField("run_as_user"):
        out.run_as_user.value = pod_ctx.run_as_user
    if ctx.HasField("run_as_group"):
        out.run_as_group.value = ctx.run_as_group
    elif pod_ctx.HasField("run_as_group"):
        out.run_as_group.value = pod_ctx.run_as_group
    if ctx.HasField("privileged"):
        out.privileged = ctx.privileged
    if ctx.HasField("read_only_root_filesystem"):
        out.readonly_rootfs = ctx.read_only_root_filesystem
    if ctx.HasField("allow_privilege_escalation"):
        out.no_new_privs = not ctx.allow_privilege_escalation
    if ctx.HasField("capabilities"):
        out.capabilities.add_capabilities.extend(ctx.capabilities.add)
        out.capabilities.drop_capabilities.extend(ctx.capabilities.drop)
    return out


def run_as_non_root(pod: core_pb2.Pod, container: core_pb2.Container) -> bool:
    ctx = container.security_context
    if ctx.HasField("run_as_non_root"):
        return ctx.run_as_non_root
    return pod.spec.security_context.HasField("run_as_non_root") and pod.spec.security_context.run_as_non_root
