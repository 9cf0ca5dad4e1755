"""One pod's sync: compare what the API wants with what the runtime holds and take the next
steps (Kubernetes' SyncPod / computePodActions). Level-triggered and idempotent: it is run
whenever anything about the pod changes and every sync period, reads the runtime afresh each
time, and from any state converges: volumes, then the sandbox, then init containers one at a
time in order, then the app containers (together), restarting per restartPolicy with
back-off, replacing containers whose liveness probe failed or whose spec changed.

A CRI or API failure aborts the sync (the worker retries); it never counts as "nothing runs",
so an unreachable runtime or apiserver never leads to killing or recreating anything."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri
from services.client.events import NORMAL, WARNING
from services.kubelet import labels as keys
from services.kubelet.backoff import Backoff
from services.kubelet.config import KubeletConfig
from services.kubelet.containers import ContainerManager, EventFunc, NodeFacts, StartError, field_path
from services.kubelet.cri_client import CRI, CRIError
from services.kubelet.probes import LIVENESS, STARTUP, ProbeManager, Result
from services.kubelet.runtime_state import ContainerInfo, PodRuntime, read_pod
from services.kubelet.sandbox import sandbox_config
from services.kubelet.status import TERMINAL, pod_status
from services.kubelet.volumes.errors import VolumeError
from services.kubelet.volumes.manager import Mounted, VolumeManager
from services.machinery.logs import get_logger

log = get_logger(__name__)

VOLUME_RETRY = 2.0
CONFIG_RETRY = 2.0
NETWORK_RETRY = 1.0


@dataclass
class SyncResult:
    status: core_pb2.PodStatus
    runtime: PodRuntime
    retry_after: float | None = None


def grace_of(pod: core_pb2.Pod | None, runtime: PodRuntime) -> int:
    if pod is not None:
        meta = pod.metadata
        if meta.HasField("deletion_timestamp") and meta.HasField("deletion_grace_period_seconds"):
            return int(meta.deletion_grace_period_seconds)
        if pod.spec.HasField("termination_grace_period_seconds"):
            return int(pod.spec.termination_grace_period_seconds)
        return 30
    for c in runtime.containers:
        if keys.POD_GRACE in c.annotations:
            return int(c.annotations[keys.POD_GRACE] or 30)
    return 30


class PodSyncer:
    def __init__(
        self,
        config: KubeletConfig,
        runtime: CRI,
        containers: ContainerManager,
        volumes: VolumeManager,
        probes: ProbeManager,
        backoff: Backoff,
        event: EventFunc,
        node: NodeFacts,
        network_ready: Callable[[], bool],
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.containers = containers
        self.volumes = volumes
        self.probes = probes
        self.backoff = backoff
        self.event = event
        self.node = node
        self.network_ready = network_ready
        self.runtime_name = "docker"
        self.waiting: dict[str, dict[str, tuple[str, str]]] = {}
        self.pod_waiting: dict[str, tuple[str, str]] = {}

    # ---------------------------------------------------------------- status

    def status(self, pod: core_pb2.Pod, state: PodRuntime) -> core_pb2.PodStatus:
        uid = pod.metadata.uid
        return pod_status(
            pod,
            state,
            waiting=self.waiting.get(uid, {}),
            ready=lambda spec, cid: self.probes.ready(uid, spec, cid),
            started=lambda spec, cid: self.probes.started(uid, spec, cid),
            host_ip=self.node.host_ip,
            runtime_name=self.runtime_name,
            pod_waiting=self.pod_waiting.get(uid),
        )

    # ---------------------------------------------------------------- live pods

    async def sync(self, pod: core_pb2.Pod) -> SyncResult:
        uid = pod.metadata.uid
        state = await read_pod(self.runtime, uid)
        if pod.status.phase in TERMINAL:
            await self._stop_terminal(pod, state)
            state = await read_pod(self.runtime, uid)
            return SyncResult(self.status(pod, state), state)
        retry = await self._converge(pod, state)
        state = await read_pod(self.runtime, uid)
        status = self.status(pod, state)
        if status.phase in TERMINAL:
            retry = 0.0 if retry is None else min(retry, 0.0)
        return SyncResult(status, state, retry)

    async def _converge(self, pod: core_pb2.Pod, state: PodRuntime) -> float | None:
        uid = pod.metadata.uid
        waiting = self.waiting.setdefault(uid, {})
        retries: list[float] = []
        if not pod.spec.host_network and not self.network_ready():
            self.pod_waiting[uid] = (
                "NetworkNotReady",
                "network is not ready: container runtime network not ready",
            )
            return NETWORK_RETRY
        self.pod_waiting.pop(uid, None)
        sandbox = state.current_sandbox()
        try:
            mounted = await self.volumes.setup(
                pod, pod_ip=sandbox.ip if sandbox else "", host_ip=self.node.host_ip
            )
        except VolumeError as exc:
            self.event(pod, WARNING, "FailedMount", str(exc), "")
            self.pod_waiting[uid] = ("ContainerCreating", str(exc))
            return VOLUME_RETRY
        if sandbox is None:
            if state.sandboxes and self._finished_for_good(pod, state):
                return None
            created = await self._new_sandbox(pod, state)
            if created is None:
                return self.backoff.in_backoff(("sandbox", uid)) or 1.0
            state = await read_pod(self.runtime, uid)
            sandbox = state.current_sandbox()
            if sandbox is None:
                return 1.0
            if any(v.HasField("downward_api") or v.HasField("projected") for v in pod.spec.volumes):
                mounted = await self.volumes.setup(pod, pod_ip=sandbox.ip, host_ip=self.node.host_ip)
        config = sandbox_config(
            pod,
            sandbox.attempt,
            logs_dir=self.config.logs_dir,
            cluster_dns=self.config.cluster_dns,
            cluster_domain=self.config.cluster_domain,
        )
        current = sandbox.id
        if not self._initialized(pod, state, current):
            return await self._next_init(pod, state, current, config, sandbox.ip, mounted, waiting)
        starts: list[tuple[core_pb2.Container, int]] = []
        for spec in pod.spec.containers:
            latest = state.latest(spec.name)
            mine = latest if latest is not None and latest.sandbox_id == current else None
            if mine is not None and mine.running:
                decision = await self._check_running(pod, spec, mine, sandbox.ip)
                if decision is not None:
                    retries.append(decision)
                continue
            if latest is None or (mine is None and not latest.exited):
                starts.append((spec, 0 if latest is None else latest.restart_count + 1))
                continue
            wait = self._restart_wait(pod, spec, latest, waiting)
            if wait is None:
                continue
            if wait > 0:
                retries.append(wait)
                continue
            starts.append((spec, latest.restart_count + 1))
        results = await asyncio.gather(
            *(
                self._start(pod, spec, count, current, config, sandbox.ip, mounted, False)
                for spec, count in starts
            ),
            return_exceptions=True,
        )
        for (spec, _), outcome in zip(starts, results, strict=True):
            if isinstance(outcome, StartError):
                waiting[spec.name] = (outcome.reason, outcome.message)
                retries.append(outcome.retry_after or CONFIG_RETRY)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                waiting.pop(spec.name, None)
        return min(retries) if retries else None

    def _finished_for_good(self, pod: core_pb2.Pod, state: PodRuntime) -> bool:
        """The sandbox is gone but nothing may run again (restartPolicy Never, every container
        ran): do not build a new sandbox just to report the end."""
        policy = pod.spec.restart_policy or "Always"
        if policy == "Always":
            return False
        for spec in pod.spec.containers:
            latest = state.latest(spec.name)
            if latest is None or not latest.exited:
                return False
            if policy == "OnFailure" and latest.exit_code != 0:
                return False
        return True

    async def _new_sandbox(self, pod: core_pb2.Pod, state: PodRuntime) -> str | None:
        uid = pod.metadata.uid
        key = ("sandbox", uid)
        if self.backoff.in_backoff(key) > 0:
            return None
        if state.sandboxes:
            self.event(
                pod, NORMAL, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.", ""
            )
            for sb in state.sandboxes:
                await self.runtime.stop_sandbox(sb.id)
        attempt = max((sb.attempt for sb in state.sandboxes), default=-1) + 1
        config = sandbox_config(
            pod,
            attempt,
            logs_dir=self.config.logs_dir,
            cluster_dns=self.config.cluster_dns,
            cluster_domain=self.config.cluster_domain,
        )
        try:
            response = await self.runtime.call("RunPodSandbox", cri.RunPodSandboxRequest(config=config))
        except CRIError as exc:
            if exc.code.name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                raise
            self.backoff.next(key)
            message = f"Failed to create pod sandbox: {exc.details or exc.code.name}"
            self.event(pod, WARNING, "FailedCreatePodSandBox", message, "")
            self.pod_waiting[uid] = ("ContainerCreating", message)
            return None
        self.backoff.forget(key)
        return str(response.pod_sandbox_id)

    def _initialized(self, pod: core_pb2.Pod, state: PodRuntime, current: str) -> bool:
        if any(c.sandbox_id == current and not c.init for c in state.containers):
            return True
        for spec in pod.spec.init_containers:
            latest = state.latest(spec.name, init=True)
            if latest is None or latest.sandbox_id != current or not latest.exited or latest.exit_code != 0:
                return False
        return True

    async def _next_init(
        self,
        pod: core_pb2.Pod,
        state: PodRuntime,
        current: str,
        config: cri.PodSandboxConfig,
        pod_ip: str,
        mounted: dict[str, Mounted],
        waiting: dict[str, tuple[str, str]],
    ) -> float | None:
        for spec in pod.spec.init_containers:
            latest = state.latest(spec.name, init=True)
            mine = latest if latest is not None and latest.sandbox_id == current else None
            if mine is not None and mine.exited and mine.exit_code == 0:
                continue
            if mine is not None and mine.running:
                return None
            count = 0
            if mine is not None:
                if (pod.spec.restart_policy or "Always") == "Never":
                    return None
                wait = self._restart_wait(pod, spec, mine, waiting, init=True)
                if wait is None:
                    return None
                if wait > 0:
                    return wait
                count = mine.restart_count + 1
            elif latest is not None:
                count = latest.restart_count + 1
            try:
                await self._start(pod, spec, count, current, config, pod_ip, mounted, True)
            except StartError as exc:
                waiting[spec.name] = (exc.reason, exc.message)
                return exc.retry_after or CONFIG_RETRY
            waiting.pop(spec.name, None)
            return None
        return None

    def _restart_wait(
        self,
        pod: core_pb2.Pod,
        spec: core_pb2.Container,
        latest: ContainerInfo,
        waiting: dict[str, tuple[str, str]],
        init: bool = False,
    ) -> float | None:
        """None: do not restart; 0: restart now (and record the back-off); >0: wait."""
        policy = pod.spec.restart_policy or "Always"
        if policy == "Never" and not init:
            return None
        if policy == "OnFailure" and latest.exited and latest.exit_code == 0:
            return None
        key = (pod.metadata.uid, spec.name)
        since = latest.finished_at / 1e9 if latest.finished_at else None
        wait = self.backoff.in_backoff(key, since)
        if wait > 0:
            delay = self.backoff._entries[key].delay if key in self.backoff._entries else wait
            meta = pod.metadata
            message = (
                f"back-off {delay:g}s restarting failed container={spec.name} "
                f"pod={meta.name}_{meta.namespace}({meta.uid})"
            )
            if waiting.get(spec.name, ("",))[0] != "CrashLoopBackOff":
                self.event(
                    pod, WARNING, "BackOff",
                    f"Back-off restarting failed container {spec.name} in pod {meta.name}",
                    field_path(pod, spec.name),
                )  # fmt: skip
            waiting[spec.name] = ("CrashLoopBackOff", message)
            return wait
        self.backoff.next(key, since)
        return 0.0

    async def _check_running(
        self, pod: core_pb2.Pod, spec: core_pb2.Container, info: ContainerInfo, pod_ip: str
    ) -> float | None:
        uid = pod.metadata.uid
        self.waiting.get(uid, {}).pop(spec.name, None)
        self.probes.ensure(
            uid, spec, info.id, info.started_at / 1e9 if info.started_at else time.time(), pod_ip
        )
        if info.started_at:
            self.backoff.reset_if_stable((uid, spec.name), info.started_at / 1e9)
        reason = ""
        if info.hash and info.hash != keys.container_hash(spec):
            reason = f"Container {spec.name} definition changed, will be restarted"
        elif self.probes.result(uid, spec.name, LIVENESS, info.id) == Result.FAILURE:
            reason = f"Container {spec.name} failed liveness probe, will be restarted"
        elif self.probes.result(uid, spec.name, STARTUP, info.id) == Result.FAILURE:
            reason = f"Container {spec.name} failed startup probe, will be restarted"
        if not reason:
            return None
        self.probes.stop_container(uid, spec.name)
        await self.containers.stop(
            pod, spec.name, info.id, grace=grace_of(pod, PodRuntime(uid)), message=reason, pod_ip=pod_ip
        )
        return 0.0

    async def _start(
        self,
        pod: core_pb2.Pod,
        spec: core_pb2.Container,
        restart_count: int,
        sandbox_id: str,
        config: cri.PodSandboxConfig,
        pod_ip: str,
        mounted: dict[str, Mounted],
        init: bool,
    ) -> str:
        return await self.containers.start(
            pod,
            spec,
            sandbox_id=sandbox_id,
            sandbox_config=config,
            pod_ip=pod_ip,
            mounted=mounted,
            restart_count=restart_count,
            init=init,
        )

    # ---------------------------------------------------------------- ending pods

    async def _stop_terminal(self, pod: core_pb2.Pod, state: PodRuntime) -> None:
        """A Succeeded/Failed pod keeps its containers (for logs) but nothing of it runs."""
        grace = grace_of(pod, state)
        await asyncio.gather(
            *(self.containers.stop(pod, c.name, c.id, grace=grace) for c in state.running_containers)
        )
        for sb in state.sandboxes:
            if sb.ready:
                await self.runtime.stop_sandbox(sb.id)
        self.probes.stop_pod(pod.metadata.uid)

    async def terminate(self, pod: core_pb2.Pod | None, uid: str) -> None:
        """Kill the pod (preStop, SIGTERM, grace, SIGKILL), remove its sandboxes and volumes."""
        state = await read_pod(self.runtime, uid)
        grace = grace_of(pod, state)
        self.probes.stop_pod(uid)
        current = state.current_sandbox()
        ip = current.ip if current is not None else ""
        await asyncio.gather(
            *(
                self.containers.stop(
                    pod, c.name, c.id, grace=grace, pod_ip=ip or "", run_pre_stop=pod is not None
                )
                for c in state.running_containers
            )
        )
        for sb in state.sandboxes:
            await self.runtime.stop_sandbox(sb.id)
            await self.runtime.remove_sandbox(sb.id)
        for c in state.containers:
            try:
                await self.runtime.remove_container(c.id)
            except CRIError as exc:
                if not exc.not_found:
                    raise
        await self.volumes.teardown(uid)
        self.forget(uid)

    def forget(self, uid: str) -> None:
        self.waiting.pop(uid, None)
        self.pod_waiting.pop(uid, None)
        self.backoff.forget_prefix(uid)
        self.backoff.forget(("sandbox", uid))
        self.probes.stop_pod(uid)
