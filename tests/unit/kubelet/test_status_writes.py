"""The kubelet writes a pod's status to the API only when it changed (against what it last
wrote and against what the API already holds), and survives a status conflict by retrying on
a fresh copy. Runs against the in-process apiserver of the unit tier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.kubelet.config import KubeletConfig
from services.kubelet.kubelet import Kubelet
from tests.unit.apiserver.conftest import client, server  # noqa: F401
from tests.unit.kubelet.fakes import FakeCRI


class CountingClient:
    """The real client; counts UpdateStatus calls."""

    def __init__(self, real: Client) -> None:
        self.real = real
        self.status_writes = 0

    async def update_status(self, obj: Any) -> Any:
        self.status_writes += 1
        return await self.real.update_status(obj)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _pod() -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = "web", "default"
    p.spec.node_name = "n1"
    p.spec.containers.add(name="c", image="pinnace/busybox:1.0")
    return p


def _status(phase: str, ready: str) -> core_pb2.PodStatus:
    s = core_pb2.PodStatus(phase=phase, host_ip="10.0.0.5", pod_ip="10.244.0.7")
    s.conditions.add(type="Ready", status=ready)
    return s


async def test_status_written_only_when_it_changes(client: Client, tmp_path: Path) -> None:  # noqa: F811
    counting = CountingClient(client)
    kubelet = Kubelet(KubeletConfig(node_name="n1", root_dir=tmp_path), counting, FakeCRI())  # type: ignore[arg-type]
    pod = await client.create(_pod())
    running = _status("Running", "False")
    await kubelet._write_status(pod, running)
    assert counting.status_writes == 1
    stored = await client.get("pods", "web", "default")
    assert isinstance(stored, core_pb2.Pod) and stored.status == running
    version = stored.metadata.resource_version
    # Same status again, from the stale pod object or from the fresh one: no write.
    await kubelet._write_status(pod, _status("Running", "False"))
    await kubelet._write_status(stored, _status("Running", "False"))
    assert counting.status_writes == 1
    assert (await client.get("pods", "web", "default")).metadata.resource_version == version  # type: ignore[attr-defined]
    # A real change is written, even from the stale pod object (a conflict is retried on a fresh copy).
    ready = _status("Running", "True")
    await kubelet._write_status(pod, ready)
    stored = await client.get("pods", "web", "default")
    assert isinstance(stored, core_pb2.Pod) and stored.status == ready
    assert stored.metadata.resource_version != version
    writes = counting.status_writes
    await kubelet._write_status(stored, _status("Running", "True"))
    assert counting.status_writes == writes


async def test_status_of_a_deleted_pod_is_dropped_quietly(client: Client, tmp_path: Path) -> None:  # noqa: F811
    kubelet = Kubelet(KubeletConfig(node_name="n1", root_dir=tmp_path), client, FakeCRI())  # type: ignore[arg-type]
    pod = await client.create(_pod())
    await client.delete("pods", "web", "default", grace_period_seconds=0)
    await kubelet._write_status(pod, _status("Running", "True"))
    assert pod.metadata.uid not in kubelet._written
