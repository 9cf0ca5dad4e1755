"""A pod's status computed from what the runtime holds (Kubernetes' generateAPIPodStatus and
getPhase): container states with lastState and restart counts, the phase, the four
conditions, IPs and times. Pure: given the same inputs it returns the same status, so the
kubelet writes to the API only when something really changed."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.core.v1 import core_pb2
from services.kubelet import labels as keys
from services.kubelet.resources import qos_class
from services.kubelet.runtime_state import ContainerInfo, PodRuntime

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL = (SUCCEEDED, FAILED)
MAX_MESSAGE_BYTES = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048

ReadyFunc = Callable[[core_pb2.Container, str], bool]  # (container spec, container id) -> bool


def _ts(ns: int) -> Timestamp:
    stamp = Timestamp()
    if ns > 0:
        stamp.FromNanoseconds(ns // 1000 * 1000)
    return stamp


def now_ts() -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns() // 1_000_000_000 * 1_000_000_000)
    return stamp


def _read_tail(path: str, max_lines: int, max_bytes: int) -> str:
    try:
        with Path(path).open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            raw = f.read()
    except OSError:
        return ""
    lines = []
    for line in raw.decode(errors="replace").splitlines()[-max_lines:]:
        parts = line.split(" ", 3)
        lines.append(parts[3] if len(parts) == 4 else line)
    return "\n".join(lines)[-max_bytes:]


def termination_message(info: ContainerInfo) -> str:
    path = info.annotations.get(keys.TERMINATION_MESSAGE_PATH, "")
    message = ""
    if path:
        try:
            message = Path(path).read_bytes()[:MAX_MESSAGE_BYTES].decode(errors="replace")
        except OSError:
            message = ""
    policy = info.annotations.get(keys.TERMINATION_MESSAGE_POLICY, "File")
    if not message and policy == "FallbackToLogsOnError" and info.exit_code != 0 and info.log_path:
        message = _read_tail(info.log_path, FALLBACK_LOG_LINES, FALLBACK_LOG_BYTES)
    return message or info.message


def terminated(info: ContainerInfo, runtime_name: str) -> core_pb2.ContainerStateTerminated:
    reason = info.reason or ("Completed" if info.exit_code == 0 else "Error")
    return core_pb2.ContainerStateTerminated(
        exit_code=info.exit_code,
        reason=reason,
        message=termination_message(info),
        started_at=_ts(info.started_at),
        finished_at=_ts(info.finished_at),
        container_id=f"{runtime_name}://{info.id}",
    )


def container_status(
    spec: core_pb2.Container,
    runtime: PodRuntime,
    *,
    init: bool,
    waiting: Mapping[str, tuple[str, str]],
    ready: ReadyFunc,
    started: ReadyFunc,
    runtime_name: str,
    default_waiting: str,
) -> core_pb2.ContainerStatus:
    status = core_pb2.ContainerStatus(name=spec.name, image=spec.image)
    latest = runtime.latest(spec.name, init)
    pending = waiting.get(spec.name)
    if latest is None:
        reason, message = pending or (default_waiting, "")
        status.state.waiting.reason, status.state.waiting.message = reason, message
        status.started = False
        return status
    status.restart_count = latest.restart_count
    status.image = latest.image or spec.image
    status.image_id = latest.image_ref
    status.container_id = f"{runtime_name}://{latest.id}"
    previous = runtime.previous(spec.name, init)
    if latest.running:
        status.state.running.started_at.CopyFrom(_ts(latest.started_at))
        if previous is not None and previous.exited:
            status.last_state.terminated.CopyFrom(terminated(previous, runtime_name))
        status.ready = ready(spec, latest.id)
        status.started = started(spec, latest.id)
        return status
    status.started = False
    if latest.exited:
        if pending is not None:
            status.state.waiting.reason, status.state.waiting.message = pending
            status.last_state.terminated.CopyFrom(terminated(latest, runtime_name))
        else:
            status.state.terminated.CopyFrom(terminated(latest, runtime_name))
            if previous is not None and previous.exited:
                status.last_state.terminated.CopyFrom(terminated(previous, runtime_name))
        return status
    reason, message = pending or ("ContainerCreating", "")
    status.state.waiting.reason, status.state.waiting.message = reason, message
    if previous is not None and previous.exited:
        status.last_state.terminated.CopyFrom(terminated(previous, runtime_name))
    return status


def phase(
    pod: core_pb2.Pod, init_statuses: list[core_pb2.ContainerStatus], statuses: list[core_pb2.ContainerStatus]
) -> str:
    """Kubernetes' getPhase."""
    policy = pod.spec.restart_policy or "Always"
    pending_init = False
    for st in init_statuses:
        term = st.state.terminated if st.state.HasField("terminated") else None
        if term is not None and term.exit_code == 0:
            continue
        failed = (term is not None and term.exit_code != 0) or (
            st.state.HasField("waiting")
            and st.last_state.HasField("terminated")
            and st.last_state.terminated.exit_code != 0
        )
        if failed and policy == "Never":
            return FAILED
        pending_init = True
    if pending_init:
        return PENDING
    running = waiting = stopped = succeeded = 0
    for st in statuses:
        if st.state.HasField("running"):
            running += 1
        elif st.state.HasField("terminated"):
            stopped += 1
            if st.state.terminated.exit_code == 0:
                succeeded += 1
        elif st.state.HasField("waiting"):
            if st.last_state.HasField("terminated"):
                stopped += 1
            else:
                waiting += 1
    if waiting > 0:
        return PENDING
    if running > 0:
        return RUNNING
    if stopped > 0:
        if policy == "Always":
            return RUNNING
        if stopped == succeeded:
            return SUCCEEDED
        if policy == "Never":
            return FAILED
        return RUNNING
    return PENDING


def _condition(
    old: core_pb2.PodStatus, type_: str, status: bool, reason: str = "", message: str = ""
) -> core_pb2.PodCondition:
    value = "True" if status else "False"
    condition = core_pb2.PodCondition(type=type_, status=value, reason=reason, message=message)
    previous = next((c for c in old.conditions if c.type == type_), None)
    if previous is not None and previous.status == value and previous.HasField("last_transition_time"):
        condition.last_transition_time.CopyFrom(previous.last_transition_time)
    else:
        condition.last_transition_time.CopyFrom(now_ts())
    return condition


def pod_status(
    pod: core_pb2.Pod,
    runtime: PodRuntime,
    *,
    waiting: Mapping[str, tuple[str, str]],
    ready: ReadyFunc,
    started: ReadyFunc,
    host_ip: str,
    runtime_name: str = "docker",
    pod_waiting: tuple[str, str] | None = None,
) -> core_pb2.PodStatus:
    old = pod.status
    init_statuses = [
        container_status(c, runtime, init=True, waiting=waiting, ready=ready, started=started,
                         runtime_name=runtime_name,
                         default_waiting="PodInitializing" if i else "ContainerCreating")
        for i, c in enumerate(pod.spec.init_containers)
    ]  # fmt: skip
    initializing = any(
        not (st.state.HasField("terminated") and st.state.terminated.exit_code == 0) for st in init_statuses
    )
    default_waiting = "PodInitializing" if initializing else "ContainerCreating"
    statuses = [
        container_status(c, runtime, init=False, waiting=waiting, ready=ready, started=started,
                         runtime_name=runtime_name, default_waiting=default_waiting)
        for c in pod.spec.containers
    ]  # fmt: skip
    new = core_pb2.PodStatus()
    new.phase = old.phase if old.phase in TERMINAL else phase(pod, init_statuses, statuses)
    new.nominated_node_name = old.nominated_node_name
    new.qos_class = old.qos_class or qos_class(pod)
    new.init_container_statuses.extend(init_statuses)
    new.container_statuses.extend(statuses)
    if host_ip:
        new.host_ip = host_ip
        new.host_ips.add(ip=host_ip)
    sandbox = runtime.current_sandbox()
    pod_ip = host_ip if pod.spec.host_network else (sandbox.ip if sandbox is not None else "")
    if not pod_ip and new.phase in TERMINAL:
        pod_ip = old.pod_ip
    if pod_ip:
        new.pod_ip = pod_ip
        new.pod_ips.add(ip=pod_ip)
    if old.HasField("start_time"):
        new.start_time.CopyFrom(old.start_time)
    else:
        new.start_time.CopyFrom(now_ts())
    if pod_waiting is not None and new.phase == PENDING:
        new.reason, new.message = pod_waiting
    ours = ("PodScheduled", "Initialized", "ContainersReady", "Ready")
    scheduled = next((c for c in old.conditions if c.type == "PodScheduled"), None)
    if scheduled is not None:
        new.conditions.append(scheduled)
    else:
        new.conditions.append(_condition(old, "PodScheduled", True))
    incomplete = [
        st.name
        for st in init_statuses
        if not (st.state.HasField("terminated") and st.state.terminated.exit_code == 0)
    ]
    if new.phase == SUCCEEDED:
        new.conditions.append(_condition(old, "Initialized", True, "PodCompleted"))
    elif incomplete:
        message = f"containers with incomplete status: [{' '.join(incomplete)}]"
        new.conditions.append(_condition(old, "Initialized", False, "ContainersNotInitialized", message))
    else:
        new.conditions.append(_condition(old, "Initialized", True))
    unready = [st.name for st in statuses if not st.ready]
    if new.phase in TERMINAL:
        new.conditions.append(_condition(old, "ContainersReady", False, "PodCompleted"))
        new.conditions.append(_condition(old, "Ready", False, "PodCompleted"))
    elif unready:
        message = f"containers with unready status: [{' '.join(unready)}]"
        new.conditions.append(_condition(old, "ContainersReady", False, "ContainersNotReady", message))
        new.conditions.append(_condition(old, "Ready", False, "ContainersNotReady", message))
    else:
        new.conditions.append(_condition(old, "ContainersReady", True))
        new.conditions.append(_condition(old, "Ready", True))
    new.conditions.extend(c for c in old.conditions if c.type not in ours)
    return new


def all_started(status: core_pb2.PodStatus) -> bool:
    return bool(status.container_statuses) and all(
        st.state.HasField("running") for st in status.container_statuses
    )
