from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri
from services.kubelet.backoff import Backoff
from services.kubelet.runtime_state import ContainerInfo, PodRuntime, SandboxInfo
from services.kubelet.status import pod_status
from tests.unit.kubelet.fakes import pod


def test_backoff_doubles_caps_and_resets() -> None:
    now = [1000.0]
    b = Backoff(10, 40, 600, clock=lambda: now[0])
    assert b.in_backoff("k", since=now[0]) == 0
    assert b.next("k", since=now[0]) == 10
    assert b.in_backoff("k", since=now[0]) == 10
    now[0] += 10
    assert b.in_backoff("k", since=now[0] - 10) == 0
    assert b.next("k") == 20 and b.next("k") == 40 and b.next("k") == 40
    b.reset_if_stable("k", running_since=now[0] - 700)
    assert b.in_backoff("k") == 0
    assert b.next("k") == 10


def _runtime(*containers: ContainerInfo, ip: str = "10.244.1.7") -> PodRuntime:
    return PodRuntime("uid-1", [SandboxInfo("sb", True, 0, 1, ip)], list(containers))


def _c(
    name: str, state: int, *, exit_code: int = 0, restart: int = 0, created: int = 10, init: bool = False
) -> ContainerInfo:
    return ContainerInfo(
        id=f"{name}-{created}", name=name, sandbox_id="sb", state=state, created_at=created, attempt=restart,
        restart_count=restart, init=init, started_at=created * 10**9, finished_at=(created + 1) * 10**9
        if state == cri.CONTAINER_EXITED else 0, exit_code=exit_code, image="img",
    )  # fmt: skip


def _status(p: core_pb2.Pod, runtime: PodRuntime, waiting=None, ready=True) -> core_pb2.PodStatus:
    return pod_status(
        p,
        runtime,
        waiting=waiting or {},
        ready=lambda s, i: ready,
        started=lambda s, i: True,
        host_ip="10.0.0.1",
    )


def test_running_ready_pod() -> None:
    p = pod()
    status = _status(p, _runtime(_c("c", cri.CONTAINER_RUNNING)))
    assert status.phase == "Running" and status.pod_ip == "10.244.1.7" and status.host_ip == "10.0.0.1"
    conditions = {c.type: c.status for c in status.conditions}
    assert conditions == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    cs = status.container_statuses[0]
    assert cs.ready and cs.state.HasField("running") and cs.container_id == "docker://c-10"
    assert status.qos_class == "BestEffort"
    # the same inputs give the same status (writes happen only on change)
    p.status.CopyFrom(status)
    assert _status(p, _runtime(_c("c", cri.CONTAINER_RUNNING))) == status


def test_crashloop_and_phases_per_policy() -> None:
    p = pod()
    runtime = _runtime(
        _c("c", cri.CONTAINER_EXITED, exit_code=1, restart=3, created=20),
        _c("c", cri.CONTAINER_EXITED, exit_code=1, restart=2, created=5),
    )
    status = _status(p, runtime, waiting={"c": ("CrashLoopBackOff", "back-off 40s")}, ready=False)
    cs = status.container_statuses[0]
    assert cs.state.waiting.reason == "CrashLoopBackOff" and cs.restart_count == 3
    assert cs.last_state.terminated.exit_code == 1 and status.phase == "Running"
    p.spec.restart_policy = "Never"
    assert _status(p, _runtime(_c("c", cri.CONTAINER_EXITED, exit_code=1))).phase == "Failed"
    done = _status(p, _runtime(_c("c", cri.CONTAINER_EXITED, exit_code=0)))
    assert done.phase == "Succeeded" and done.container_statuses[0].state.terminated.reason == "Completed"
    assert {c.type: c.reason for c in done.conditions}["Ready"] == "PodCompleted"
    p.spec.restart_policy = "OnFailure"
    assert _status(p, _runtime(_c("c", cri.CONTAINER_EXITED, exit_code=1))).phase == "Running"


def test_init_containers_and_waiting_reasons() -> None:
    p = pod()
    p.spec.init_containers.add(name="setup", image="img")
    status = _status(p, _runtime(_c("setup", cri.CONTAINER_RUNNING, init=True)), ready=False)
    assert status.phase == "Pending"
    assert status.container_statuses[0].state.waiting.reason == "PodInitializing"
    assert {c.type: c.status for c in status.conditions}["Initialized"] == "False"
    status = _status(p, _runtime(), waiting={"setup": ("ErrImagePull", "no such image")})
    assert status.init_container_statuses[0].state.waiting.reason == "ErrImagePull"
    p.spec.restart_policy = "Never"
    assert _status(p, _runtime(_c("setup", cri.CONTAINER_EXITED, exit_code=1, init=True))).phase == "Failed"
