"""The STATUS/READY/RESTARTS cells kubectl derives from a pod's status."""

from __future__ import annotations

import datetime as dt

from pinnace.api.core.v1 import core_pb2
from services.cli.podstatus import restarts_cell, summarize
from tests.unit.apiserver.helpers import manifest

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def _pod(status: str, init: bool = False) -> core_pb2.Pod:
    init_spec = "  initContainers: [{name: i, image: x}]\n" if init else ""
    pod: core_pb2.Pod = manifest(f"""
apiVersion: v1
kind: Pod
metadata: {{name: p, namespace: default}}
spec:
  containers: [{{name: a, image: x}}, {{name: b, image: x}}]
{init_spec}status:
{status}
""")
    return pod


def test_running_and_ready() -> None:
    pod = _pod("""
  phase: Running
  containerStatuses:
  - {name: a, ready: true, restartCount: 0, state: {running: {startedAt: "2026-01-01T11:00:00Z"}}}
  - {name: b, ready: false, restartCount: 2, state: {running: {startedAt: "2026-01-01T11:00:00Z"}},
     lastState: {terminated: {exitCode: 1, finishedAt: "2026-01-01T11:55:00Z"}}}
""")
    summary = summarize(pod)
    assert (summary.ready, summary.status, summary.restarts) == ("1/2", "Running", 2)
    assert restarts_cell(summary, NOW) == "2 (5m ago)"


def test_waiting_reason_wins() -> None:
    pod = _pod("""
  phase: Running
  containerStatuses:
  - {name: a, state: {waiting: {reason: CrashLoopBackOff}}, restartCount: 4}
  - {name: b, ready: true, state: {running: {}}}
""")
    assert summarize(pod).status == "CrashLoopBackOff"


def test_terminated_without_reason() -> None:
    pod = _pod("""
  phase: Failed
  containerStatuses:
  - {name: a, state: {terminated: {exitCode: 3}}}
  - {name: b, state: {terminated: {exitCode: 0, signal: 9}}}
""")
    assert summarize(pod).status == "ExitCode:3"


def test_completed() -> None:
    pod = _pod("""
  phase: Succeeded
  containerStatuses:
  - {name: a, state: {terminated: {exitCode: 0, reason: Completed}}}
  - {name: b, state: {terminated: {exitCode: 0, reason: Completed}}}
""")
    assert summarize(pod).status == "Completed"


def test_init_containers() -> None:
    waiting = _pod(
        """
  phase: Pending
  initContainerStatuses: [{name: i, state: {running: {}}}]
""",
        init=True,
    )
    assert summarize(waiting).status == "Init:0/1"
    failed = _pod(
        """
  phase: Pending
  initContainerStatuses: [{name: i, state: {terminated: {exitCode: 2}}}]
""",
        init=True,
    )
    assert summarize(failed).status == "Init:ExitCode:2"
    backoff = _pod(
        """
  phase: Pending
  initContainerStatuses: [{name: i, state: {waiting: {reason: CrashLoopBackOff}}}]
""",
        init=True,
    )
    assert summarize(backoff).status == "Init:CrashLoopBackOff"


def test_terminating() -> None:
    pod = _pod("  phase: Running")
    pod.metadata.deletion_timestamp.FromDatetime(NOW)
    assert summarize(pod).status == "Terminating"
    pod.status.phase = "Succeeded"
    assert summarize(pod).status == "Succeeded"
