"""A pod's STATUS, READY and RESTARTS cells as kubectl computes them (printPod): the reason of
a waiting or terminated container wins over the phase, init containers show `Init:x/y`, a pod
being deleted shows `Terminating`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.core.v1 import core_pb2
from services.cli.printers import age

NODE_UNREACHABLE_REASON = "NodeLost"
_TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class PodSummary:
    ready: str  # "1/2"
    status: str  # "Running", "CrashLoopBackOff", "Init:0/1", "Terminating", ...
    restarts: int
    last_restart: Timestamp | None  # when a container last terminated before a restart


def _later(current: Timestamp | None, candidate: Timestamp) -> Timestamp | None:
    if candidate.seconds == 0 and candidate.nanos == 0:
        return current
    if current is None or (candidate.seconds, candidate.nanos) > (current.seconds, current.nanos):
        return candidate
    return current


def _condition_true(pod: core_pb2.Pod, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in pod.status.conditions)


def _init_reason(pod: core_pb2.Pod) -> tuple[str | None, int, Timestamp | None]:
    """The reason an initialising pod shows, or None once every init container succeeded."""
    restarts, last = 0, None
    for index, status in enumerate(pod.status.init_container_statuses):
        restarts += status.restart_count
        if status.last_state.HasField("terminated"):
            last = _later(last, status.last_state.terminated.finished_at)
        state = status.state
        if state.HasField("terminated") and state.terminated.exit_code == 0:
            continue
        if state.HasField("terminated"):
            term = state.terminated
            if term.reason:
                return f"Init:{term.reason}", restarts, last
            if term.signal:
                return f"Init:Signal:{term.signal}", restarts, last
            return f"Init:ExitCode:{term.exit_code}", restarts, last
        if state.HasField("waiting") and state.waiting.reason and state.waiting.reason != "PodInitializing":
            return f"Init:{state.waiting.reason}", restarts, last
        return f"Init:{index}/{len(pod.spec.init_containers)}", restarts, last
    return None, restarts, last


def summarize(pod: core_pb2.Pod) -> PodSummary:
    reason = pod.status.reason or pod.status.phase
    init_reason, restarts, last_restart = _init_reason(pod)
    ready = 0
    if init_reason is not None:
        reason = init_reason
    if init_reason is None or _condition_true(pod, "Initialized"):
        restarts, last_restart = 0, None
        has_running = False
        for status in reversed(pod.status.container_statuses):
            restarts += status.restart_count
            if status.last_state.HasField("terminated"):
                last_restart = _later(last_restart, status.last_state.terminated.finished_at)
            state = status.state
            if state.HasField("waiting") and state.waiting.reason:
                reason = state.waiting.reason
            elif state.HasField("terminated") and state.terminated.reason:
                reason = state.terminated.reason
            elif state.HasField("terminated"):
                term = state.terminated
                reason = f"Signal:{term.signal}" if term.signal else f"ExitCode:{term.exit_code}"
            elif status.ready and state.HasField("running"):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(pod, "Ready") else "NotReady"
    deleting = pod.metadata.HasField("deletion_timestamp")
    if deleting and pod.status.reason == NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif deleting and pod.status.phase not in _TERMINAL_PHASES:
        reason = "Terminating"
    return PodSummary(f"{ready}/{len(pod.spec.containers)}", reason, restarts, last_restart)


def restarts_cell(summary: PodSummary, now: dt.datetime) -> str:
    """`3` or, once a container restarted, `3 (5m ago)` as kubectl prints it."""
    if summary.last_restart is None:
        return str(summary.restarts)
    return f"{summary.restarts} ({age(summary.last_restart, now)} ago)"
