"""Graceful stop of a container: preStop runs first and is bounded by the grace period,
StopContainer (SIGTERM, then SIGKILL after its timeout) follows with what is left, and the
grace period comes from deletionGracePeriodSeconds, the spec, or the runtime annotation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri
from services.kubelet import labels as keys
from services.kubelet.backoff import Backoff
from services.kubelet.config import KubeletConfig
from services.kubelet.containers import ContainerManager, NodeFacts
from services.kubelet.cri_client import CRIError
from services.kubelet.probes import HandlerError, ProbeManager
from services.kubelet.runtime_state import ContainerInfo, PodRuntime
from services.kubelet.sync import PodSyncer, grace_of
from tests.unit.kubelet.fakes import pod


class Recorder:
    """CRI and hook handlers in one: every action lands in `order`."""

    def __init__(self, pre_stop: str = "ok") -> None:
        self.order: list[tuple[str, Any]] = []
        self.pre_stop = pre_stop  # "ok", "fail" or "hang"
        self.stop_error: CRIError | None = None

    async def run(self, action: Any, container: Any, container_id: str, pod_ip: str, timeout: float) -> str:
        self.order.append(("preStop", (container_id, list(action.exec.command), pod_ip, timeout)))
        if self.pre_stop == "fail":
            raise HandlerError("command exited with 1")
        if self.pre_stop == "hang":
            await asyncio.Event().wait()
        return ""

    async def stop_container(self, container_id: str, grace: int) -> None:
        self.order.append(("StopContainer", (container_id, grace)))
        if self.stop_error is not None:
            raise self.stop_error


def _manager(rec: Recorder, events: list[tuple[str, str, str]]) -> ContainerManager:
    return ContainerManager(
        runtime=rec,  # type: ignore[arg-type]
        volumes=None,  # type: ignore[arg-type]
        objects=None,  # type: ignore[arg-type]
        handlers=rec,  # type: ignore[arg-type]
        backoff=None,  # type: ignore[arg-type]
        event=lambda p, kind, reason, msg, path: events.append((kind, reason, path)),
        node=None,  # type: ignore[arg-type]
    )


def _pod_with_pre_stop() -> core_pb2.Pod:
    p = pod("web", "ns")
    p.spec.containers[0].lifecycle.pre_stop.exec.command.extend(["sh", "-c", "drain"])
    return p


async def test_pre_stop_runs_before_stop_container_with_the_remaining_grace() -> None:
    rec, events = Recorder(), []  # type: ignore[var-annotated]
    await _manager(rec, events).stop(_pod_with_pre_stop(), "c", "cid", grace=30, pod_ip="10.244.0.5")
    assert [step for step, _ in rec.order] == ["preStop", "StopContainer"]
    assert rec.order[0][1] == ("cid", ["sh", "-c", "drain"], "10.244.0.5", 30)
    container_id, timeout = rec.order[1][1]
    assert container_id == "cid" and 29 <= timeout <= 30
    assert events == [("Normal", "Killing", "spec.containers{c}")]


async def test_failing_pre_stop_emits_event_and_still_stops() -> None:
    rec, events = Recorder(pre_stop="fail"), []  # type: ignore[var-annotated]
    await _manager(rec, events).stop(_pod_with_pre_stop(), "c", "cid", grace=10)
    assert [step for step, _ in rec.order] == ["preStop", "StopContainer"]
    assert ("Warning", "FailedPreStopHook", "spec.containers{c}") in events


async def test_hanging_pre_stop_is_cut_at_the_grace_period_then_minimum_two_seconds_to_stop() -> None:
    rec, events = Recorder(pre_stop="hang"), []  # type: ignore[var-annotated]
    await _manager(rec, events).stop(_pod_with_pre_stop(), "c", "cid", grace=1)
    assert [step for step, _ in rec.order] == ["preStop", "StopContainer"]
    assert rec.order[1][1] == ("cid", 2)
    assert ("Warning", "FailedPreStopHook", "spec.containers{c}") in events


async def test_zero_grace_skips_pre_stop_and_kills_at_once() -> None:
    rec, events = Recorder(), []  # type: ignore[var-annotated]
    await _manager(rec, events).stop(_pod_with_pre_stop(), "c", "cid", grace=0)
    assert rec.order == [("StopContainer", ("cid", 0))]


async def test_no_pre_stop_when_told_not_to_or_pod_unknown() -> None:
    rec, events = Recorder(), []  # type: ignore[var-annotated]
    manager = _manager(rec, events)
    await manager.stop(_pod_with_pre_stop(), "c", "cid", grace=5, run_pre_stop=False)
    await manager.stop(None, "c", "cid2", grace=5)
    assert [step for step, _ in rec.order] == ["StopContainer", "StopContainer"]
    assert len(events) == 1  # no pod object, no event for the second stop


async def test_stop_of_gone_container_is_fine_other_errors_raise() -> None:
    rec, events = Recorder(), []  # type: ignore[var-annotated]
    manager = _manager(rec, events)
    rec.stop_error = CRIError("StopContainer", grpc.StatusCode.NOT_FOUND, "no such container")
    await manager.stop(None, "c", "cid", grace=5)
    rec.stop_error = CRIError("StopContainer", grpc.StatusCode.UNAVAILABLE, "runtime down")
    with pytest.raises(CRIError, match="UNAVAILABLE"):
        await manager.stop(None, "c", "cid", grace=5)


def test_grace_period_sources_in_kubernetes_order() -> None:
    p = pod()
    assert grace_of(p, PodRuntime("uid-1")) == 30
    p.spec.termination_grace_period_seconds = 45
    assert grace_of(p, PodRuntime("uid-1")) == 45
    # deletionGracePeriodSeconds only counts once the pod is being deleted.
    p.metadata.deletion_grace_period_seconds = 3
    assert grace_of(p, PodRuntime("uid-1")) == 45
    p.metadata.deletion_timestamp.FromSeconds(1_700_000_000)
    assert grace_of(p, PodRuntime("uid-1")) == 3
    p.metadata.deletion_grace_period_seconds = 0
    assert grace_of(p, PodRuntime("uid-1")) == 0


def test_grace_period_of_unknown_pod_comes_from_the_runtime_annotation() -> None:
    state = PodRuntime("uid-1")
    assert grace_of(None, state) == 30
    state.containers.append(
        ContainerInfo(
            id="cid",
            name="c",
            sandbox_id="sb",
            state=1,
            created_at=1,
            attempt=0,
            annotations={keys.POD_GRACE: "7"},
        )
    )
    assert grace_of(None, state) == 7


class PodCRI(Recorder):
    """One pod in the runtime: a ready sandbox, a running and an exited container."""

    def __init__(self) -> None:
        super().__init__()
        labels = {keys.POD_UID: "uid-1"}
        self.sandboxes = [
            cri.PodSandbox(id="sb", state=cri.SANDBOX_READY, created_at=2, labels=labels)  # type: ignore[arg-type]
        ]
        self.containers = [
            cri.Container(
                id="run",
                pod_sandbox_id="sb",
                state=cri.CONTAINER_RUNNING,
                created_at=2,  # type: ignore[arg-type]
                metadata=cri.ContainerMetadata(name="c"),
                labels={**labels, keys.CONTAINER_NAME: "c"},
            ),
            cri.Container(
                id="old",
                pod_sandbox_id="sb",
                state=cri.CONTAINER_EXITED,
                created_at=1,  # type: ignore[arg-type]
                metadata=cri.ContainerMetadata(name="c"),
                labels={**labels, keys.CONTAINER_NAME: "c"},
            ),
        ]

    async def list_sandboxes(self, labels: dict[str, str] | None = None) -> list[cri.PodSandbox]:
        return list(self.sandboxes)

    async def list_containers(self, labels: dict[str, str] | None = None) -> list[cri.Container]:
        return list(self.containers)

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        found = next(c for c in self.containers if c.id == container_id)
        return cri.ContainerStatus(id=container_id, state=found.state)

    async def sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus:
        status = cri.PodSandboxStatus(id=sandbox_id, state=cri.SANDBOX_READY)
        status.network.ip = "10.244.0.9"
        return status

    async def stop_sandbox(self, sandbox_id: str) -> None:
        self.order.append(("StopPodSandbox", sandbox_id))

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self.order.append(("RemovePodSandbox", sandbox_id))

    async def remove_container(self, container_id: str) -> None:
        self.order.append(("RemoveContainer", container_id))

    async def teardown(self, uid: str) -> None:
        self.order.append(("TearDownVolumes", uid))


def _recording_syncer(tmp_path: Path) -> tuple[PodCRI, PodSyncer]:
    """A PodSyncer whose runtime, volumes and probes all record into one PodCRI."""
    rec, events = PodCRI(), []  # type: ignore[var-annotated]
    syncer = PodSyncer(
        config=KubeletConfig(node_name="n1", root_dir=tmp_path),
        runtime=rec,  # type: ignore[arg-type]
        containers=_manager(rec, events),
        volumes=rec,  # type: ignore[arg-type]
        probes=ProbeManager(rec, lambda *a: None),  # type: ignore[arg-type]
        backoff=Backoff(),
        event=lambda *a: None,
        node=NodeFacts(),
        network_ready=lambda: True,
    )
    return rec, syncer


async def test_terminate_runs_pre_stop_then_stops_then_removes_sandbox_containers_volumes(
    tmp_path: Path,
) -> None:
    rec, syncer = _recording_syncer(tmp_path)
    p = _pod_with_pre_stop()
    p.metadata.deletion_timestamp.FromSeconds(1_700_000_000)
    p.metadata.deletion_grace_period_seconds = 20
    await syncer.terminate(p, "uid-1")
    assert [step for step, _ in rec.order] == [
        "preStop",
        "StopContainer",
        "StopPodSandbox",
        "RemovePodSandbox",
        "RemoveContainer",
        "RemoveContainer",
        "TearDownVolumes",
    ]
    # Only the running container is stopped; the hook sees the pod IP; grace is the deletion's.
    assert rec.order[0][1] == ("run", ["sh", "-c", "drain"], "10.244.0.9", 20)
    assert rec.order[1][1][0] == "run" and 19 <= rec.order[1][1][1] <= 20
    assert {cid for step, cid in rec.order if step == "RemoveContainer"} == {"run", "old"}


async def test_terminate_of_pod_gone_from_api_skips_pre_stop(tmp_path: Path) -> None:
    rec, syncer = _recording_syncer(tmp_path)
    await syncer.terminate(None, "uid-1")
    assert "preStop" not in [step for step, _ in rec.order]
    assert rec.order[0] == ("StopContainer", ("run", 30))
