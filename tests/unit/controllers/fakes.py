"""Test doubles for controller scenarios: a fake kubelet that plays the node's part (binds
unscheduled pods when asked, reports them Running and Ready with an IP, confirms graceful
deletions) and a harness that runs controllers against the in-process apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.errors import APIStatusError, ConflictError, NotFoundError
from services.client.events import EventRecorder
from services.client.informer import Informer
from services.controllers.base import Controller, ControllerContext, InformerFactory, Settings
from services.controllers.podutil import now_ts


async def until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


class FakeKubelet:
    """Marks pods Running/Ready as a kubelet would, on the nodes it pretends to be."""

    def __init__(self, client: Client, nodes: list[str] | None = None, *, bind: bool = True) -> None:
        self.client = client
        self.nodes = nodes or ["node-a", "node-b"]
        self.bind = bind
        self.auto_ready = True
        self.informer = Informer(client, "pods")
        self.informer.add_handlers(on_add=self._changed, on_update=lambda _o, n: self._changed(n))
        self._ips = itertools.count(1)
        self._next_node = itertools.cycle(self.nodes)
        self._tasks: set[asyncio.Task[None]] = set()
        self.paused = False
        # When set, a Running pod finishes with the phase it returns (None: keeps running).
        self.finish: Callable[[core_pb2.Pod], str | None] | None = None

    async def start(self) -> None:
        self.informer.start()
        await self.informer.wait_synced(10)

    async def stop(self) -> None:
        await self.informer.stop()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _changed(self, pod: Any) -> None:
        if self.paused:
            return
        task = asyncio.get_running_loop().create_task(self._handle(pod))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, pod: core_pb2.Pod) -> None:
        with contextlib.suppress(APIStatusError):
            if pod.metadata.HasField("deletion_timestamp"):
                if pod.spec.node_name:
                    await self.client.delete(
                        "pods", pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0
                    )
                return
            if not pod.spec.node_name:
                if self.bind:
                    await self.client.bind(pod.metadata.name, pod.metadata.namespace, next(self._next_node))
                return
            if pod.status.phase == "Pending" and self.auto_ready:
                await self.set_status(
                    pod.metadata.namespace, pod.metadata.name, phase="Running", ready=True, expect="Pending"
                )
            elif pod.status.phase == "Running" and self.finish is not None:
                outcome = self.finish(pod)
                if outcome is not None:
                    code = 0 if outcome == "Succeeded" else 1
                    await self.set_status(
                        pod.metadata.namespace,
                        pod.metadata.name,
                        phase=outcome,
                        ready=False,
                        exit_code=code,
                        expect="Running",
                    )

    async def set_status(
        self,
        namespace: str,
        name: str,
        *,
        phase: str = "Running",
        ready: bool = True,
        exit_code: int = 0,
        expect: str = "",
    ) -> None:
        for _ in range(10):
            try:
                pod = await self.client.get("pods", name, namespace)
            except NotFoundError:
                return
            assert isinstance(pod, core_pb2.Pod)
            if expect and pod.status.phase != expect:
                return  # a newer event already moved the pod on
            pod.status.phase = phase
            if not pod.status.pod_ip:
                n = next(self._ips)
                pod.status.pod_ip = f"10.244.{n // 250}.{n % 250 + 2}"
            pod.status.host_ip = "192.168.56.11"
            if not pod.status.HasField("start_time"):
                pod.status.start_time.CopyFrom(now_ts())
            del pod.status.conditions[:]
            pod.status.conditions.add(
                type="Ready", status="True" if ready else "False", last_transition_time=now_ts()
            )
            del pod.status.container_statuses[:]
            for container in pod.spec.containers:
                status = pod.status.container_statuses.add(name=container.name, image=container.image)
                status.ready = ready
                if phase in ("Succeeded", "Failed"):
                    status.state.terminated.exit_code = exit_code
            try:
                await self.client.update_status(pod)
                return
            except ConflictError:
                continue


class Harness:
    """Builds controllers on one shared informer factory and runs them until the test ends."""

    def __init__(self, client: Client, settings: Settings | None = None) -> None:
        self.client = client
        self.settings = settings or fast_settings()
        self.informers = InformerFactory(client)
        self.recorder = EventRecorder(client, "controller-manager")
        self.ctx = ControllerContext(client, self.informers, self.recorder, self.settings)
        self.controllers: list[Controller] = []
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, cls: type[Controller], **kwargs: Any) -> Any:
        controller = cls(self.ctx, **kwargs)
        self.controllers.append(controller)
        return controller

    async def start(self) -> None:
        self.informers.start()
        await self.informers.wait_synced(10)
        for controller in self.controllers:
            self._tasks.append(asyncio.get_running_loop().create_task(controller.run()))

    async def stop(self) -> None:
        for controller in self.controllers:
            await controller.shutdown()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.informers.stop()
        await self.recorder.close()


def fast_settings() -> Settings:
    return Settings(
        node_monitor_period=0.1,
        node_monitor_grace_period=0.6,
        node_startup_grace_period=0.6,
        eviction_rate=100.0,
        pod_eviction_timeout=1.0,
        job_backoff_seconds=0.0,
        namespace_retry_seconds=0.1,
        hpa_sync_period=0.1,
        hpa_downscale_stabilization=0.5,
        cronjob_sync_period=0.1,
    )


async def scale(client: Client, resource: str, name: str, replicas: int, namespace: str = "default") -> None:
    """Scale, retrying conflicts with the controllers' concurrent status writes."""
    for _ in range(50):
        try:
            await client.scale(resource, name, replicas, namespace)
            return
        except ConflictError:
            await asyncio.sleep(0.01)
    raise AssertionError("scale kept conflicting")
