"""The kubelet: wires the parts together and runs the node's loops.

- sources: the API's pods bound to this node (an informer with fieldSelector
  spec.nodeName=<node>) and the static pods of the manifest folder;
- one worker per pod (pod_workers) running sync.PodSyncer, woken by API changes, by the
  relister (container state changes seen in the runtime, like Kubernetes' PLEG), by probe
  results, and every sync period;
- housekeeping: orphans (pods in the runtime the sources no longer want) are killed, but only
  after the pod informer has synced, so a restarted kubelet never kills what it has not yet
  seen in the API; static pods are re-read and their mirror pods kept;
- node loops: status, lease, CNI config from the pod CIDR, garbage collection.

Stopping the kubelet (or killing it) leaves every container running: it holds no state the
runtime and the API do not hold."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri
from services.client.client import Client
from services.client.errors import AlreadyExistsError, APIStatusError, ConflictError, NotFoundError
from services.client.events import EventRecorder, reference
from services.client.informer import Informer
from services.kubelet import cni_config
from services.kubelet import labels as keys
from services.kubelet.backoff import Backoff
from services.kubelet.config import KubeletConfig
from services.kubelet.containers import ContainerManager, NodeFacts
from services.kubelet.cri_client import CRI, CRIError
from services.kubelet.gc import GarbageCollector
from services.kubelet.lease import renew
from services.kubelet.metrics import POD_START_SECONDS, RUNNING_CONTAINERS, RUNNING_PODS
from services.kubelet.netns import SocketFactory
from services.kubelet.node_status import NodeStatusManager, _meminfo
from services.kubelet.objects import APIObjects
from services.kubelet.pod_workers import DONE, PodWorkers, _Done
from services.kubelet.probes import LIVENESS, READINESS, STARTUP, Handlers, ProbeManager
from services.kubelet.static_pods import CONFIG_MIRROR, is_mirror, mirror_of, read_static_pods
from services.kubelet.status import all_started
from services.kubelet.sync import PodSyncer
from services.kubelet.volumes.manager import VolumeManager
from services.machinery.logs import get_logger

log = get_logger(__name__)

STATUS_RETRY = 2.0


def _uid_index(obj: Message) -> list[str]:
    return [obj.metadata.uid]  # type: ignore[attr-defined]


class Kubelet:
    def __init__(self, config: KubeletConfig, client: Client, runtime: CRI) -> None:
        self.config = config
        self.client = client
        self.runtime = runtime
        node = config.node_name
        self.recorder = EventRecorder(client, "kubelet", host=node)
        self.sockets = SocketFactory(config.network_namespace)
        self.node_status = NodeStatusManager(config, client, runtime)
        self.pods = Informer(
            client, "pods", field_selector=f"spec.nodeName={node}", indexers={"uid": _uid_index}
        )
        self.services = Informer(client, "services")
        self.node_informer = Informer(client, "nodes", field_selector=f"metadata.name={node}")
        self.objects = APIObjects(client, self.services)
        self.backoff = Backoff(config.backoff_initial, config.backoff_max, config.backoff_reset_after)
        self.handlers = Handlers(runtime, self.sockets)
        self.probes = ProbeManager(self.handlers, self._probe_changed)
        self.facts = NodeFacts(host_ip=config.node_ip, memory_capacity=_meminfo().get("MemTotal", 0))
        self.volumes = VolumeManager(config.pods_dir, self.objects, lambda: self.facts.allocatable or {})
        self.containers = ContainerManager(
            runtime, self.volumes, self.objects, self.handlers, self.backoff, self._event, self.facts
        )
        self.syncer = PodSyncer(
            config,
            runtime,
            self.containers,
            self.volumes,
            self.probes,
            self.backoff,
            self._event,
            self.facts,
            lambda: self.node_status.health.network_ready,
        )
        self.workers = PodWorkers(self._sync, config.sync_frequency)
        self.static_pods: dict[str, core_pb2.Pod] = {}
        self.ready = asyncio.Event()
        self.pod_cidr = ""
        self._written: dict[str, core_pb2.PodStatus] = {}
        self._start_reported: set[str] = set()
        self._runtime_uids: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.node_uid = ""

    # ---------------------------------------------------------------- lifecycle

    async def start(self, node_api_port: int = 0) -> None:
        self.node_status.node_api_port = node_api_port
        self.config.pods_dir.mkdir(parents=True, exist_ok=True)
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        await self._retry("container runtime", self._connect_runtime)
        await self._retry("node registration", self._register)
        self.facts.allocatable = dict(self.node_status.build_status(core_pb2.NodeStatus()).allocatable)
        self.node_informer.add_handlers(
            on_add=self._node_changed, on_update=lambda _o, n: self._node_changed(n)
        )
        self.pods.add_handlers(
            on_add=self._pod_event, on_update=lambda _o, n: self._pod_event(n), on_delete=self._pod_event
        )
        for informer in (self.node_informer, self.services, self.pods):
            informer.start()
        await self.pods.synced.wait()
        await self.services.synced.wait()
        if self.config.pod_manifest_path is not None:
            self.static_pods = read_static_pods(self.config.pod_manifest_path, self.config.node_name)
        self.ready.set()
        if self.node_status.health.network_ready:
            # The podCIDR (and the network with it) may have come while starting, when
            # _node_changed does not post: say Ready now, not a status period later.
            with contextlib.suppress(APIStatusError):
                await self.node_status.update()
        for uid in self._desired_uids():
            self.workers.wake(uid)
        for name, loop in (
            ("relist", self._relist_loop),
            ("housekeeping", self._housekeeping_loop),
            ("node-status", self._node_status_loop),
            ("lease", self._lease_loop),
            ("gc", self._gc_loop),
        ):
            self._tasks.append(asyncio.create_task(self._forever(name, loop), name=f"kubelet-{name}"))
        log.info("kubelet started", node=self.config.node_name, pods=len(self._desired_uids()))

    async def stop(self) -> None:
        """Stop the kubelet's own work; every container keeps running."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        await self.workers.stop()
        await self.probes.stop_all()
        for informer in (self.pods, self.services, self.node_informer):
            await informer.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.recorder.flush(), 2)
        await self.recorder.close()
        self.sockets.close()

    async def _retry(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        delay = 0.2
        while True:
            try:
                await step()
                return
            except (CRIError, APIStatusError) as exc:
                log.warning(f"{what} failed, retrying", error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _connect_runtime(self) -> None:
        version = await self.runtime.version()
        self.syncer.runtime_name = version.runtime_name or "docker"
        await self.node_status.refresh_runtime()

    async def _register(self) -> None:
        node = await self.node_status.register()
        await self._node_changed(node)
        await self.node_status.update()
        self.node_uid = node.metadata.uid
        if not self.node_status.host_ip:
            internal = next((a.address for a in node.status.addresses if a.type == "InternalIP"), "")
            self.node_status.host_ip = self.facts.host_ip = internal

    async def _forever(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kubelet loop failed; restarting it", loop=name)
                await asyncio.sleep(1)

    # ---------------------------------------------------------------- sources

    def _api_pod(self, uid: str) -> core_pb2.Pod | None:
        for pod in self.pods.store.by_index("uid", uid):
            if isinstance(pod, core_pb2.Pod) and not is_mirror(pod):
                return pod
        return None

    def desired(self, uid: str) -> core_pb2.Pod | None:
        return self.static_pods.get(uid) or self._api_pod(uid)

    def _desired_uids(self) -> set[str]:
        uids = {
            p.metadata.uid for p in self.pods.store.list() if isinstance(p, core_pb2.Pod) and not is_mirror(p)
        }
        return uids | set(self.static_pods)

    async def _pod_event(self, pod: Message) -> None:
        if not isinstance(pod, core_pb2.Pod):
            return
        if is_mirror(pod):
            static = pod.metadata.annotations[CONFIG_MIRROR]
            if static in self.static_pods:
                self.workers.wake(static)
            return
        self.workers.wake(pod.metadata.uid)

    async def _node_changed(self, node: Message) -> None:
        if not isinstance(node, core_pb2.Node):
            return
        cidr = node.spec.pod_cidr
        if not cidr or cidr == self.pod_cidr:
            return
        self.pod_cidr = cidr
        if self.config.cni_conf_dir is not None:
            plugins = cni_config.plugin_names(self.config.cni_bin_dirs, self.config.cni_plugin)
            document = cni_config.conflist(cidr, self.config.cni_bridge, self.config.cni_data_dir, plugins)
            if cni_config.write_conflist(self.config.cni_conf_dir, document):
                log.info("CNI config written", pod_cidr=cidr, plugins=plugins[:2])
        request = cri.UpdateRuntimeConfigRequest(
            runtime_config=cri.RuntimeConfig(network_config=cri.NetworkConfig(pod_cidr=cidr))
        )
        with contextlib.suppress(CRIError):
            await self.runtime.call("UpdateRuntimeConfig", request, 10)
        was_ready = self.node_status.health.network_ready
        with contextlib.suppress(CRIError):
            await self.node_status.refresh_runtime()
        if self.node_status.health.network_ready and not was_ready:
            if self.ready.is_set():
                with contextlib.suppress(APIStatusError):
                    await self.node_status.update()
            for uid in self._desired_uids():
                self.workers.wake(uid)

    # ---------------------------------------------------------------- one pod

    async def _sync(self, uid: str) -> float | _Done | None:
        pod = self.desired(uid)
        if pod is None and not self.ready.is_set():
            return None
        if pod is None or pod.metadata.HasField("deletion_timestamp"):
            await self.syncer.terminate(pod, uid)
            if pod is not None and uid not in self.static_pods:
                await self._confirm_deletion(pod)
            self._written.pop(uid, None)
            self._start_reported.discard(uid)
            log.info(
                "pod terminated", pod=f"{pod.metadata.namespace}/{pod.metadata.name}" if pod else "", uid=uid
            )
            return DONE
        result = await self.syncer.sync(pod)
        retry = result.retry_after
        try:
            await self._write_status(pod, result.status)
        except APIStatusError as exc:
            log.info("pod status not written", pod=pod.metadata.name, error=str(exc))
            retry = min(retry, STATUS_RETRY) if retry is not None else STATUS_RETRY
        if uid not in self._start_reported and all_started(result.status):
            self._start_reported.add(uid)
            created = pod.metadata.creation_timestamp.ToNanoseconds() / 1e9
            if created > 0:
                POD_START_SECONDS.observe(max(0.0, time.time() - created))
        return retry

    async def _confirm_deletion(self, pod: core_pb2.Pod) -> None:
        meta = pod.metadata
        with contextlib.suppress(NotFoundError, ConflictError):
            await self.client.delete("pods", meta.name, meta.namespace, grace_period_seconds=0, uid=meta.uid)

    async def _write_status(self, pod: core_pb2.Pod, status: core_pb2.PodStatus) -> None:
        uid = pod.metadata.uid
        target: core_pb2.Pod | None = pod
        if uid in self.static_pods:
            target = await self._ensure_mirror(pod)
            if target is None:
                return
        assert target is not None
        if self._written.get(uid) == status or target.status == status:
            self._written[uid] = status
            return
        updated = core_pb2.Pod()
        updated.CopyFrom(target)
        updated.status.CopyFrom(status)
        try:
            await self.client.update_status(updated)
        except ConflictError:
            fresh = await self.client.get("pods", target.metadata.name, target.metadata.namespace)
            assert isinstance(fresh, core_pb2.Pod)
            if fresh.metadata.uid != target.metadata.uid:
                return
            fresh.status.CopyFrom(status)
            await self.client.update_status(fresh)
        except NotFoundError:
            return
        self._written[uid] = status

    async def _ensure_mirror(self, static: core_pb2.Pod) -> core_pb2.Pod | None:
        key = f"{static.metadata.namespace}/{static.metadata.name}"
        current = self.pods.store.get(key)
        if isinstance(current, core_pb2.Pod):
            mine = current.metadata.annotations.get(CONFIG_MIRROR) == static.metadata.uid
            if mine and not current.metadata.HasField("deletion_timestamp"):
                return current
            if is_mirror(current) or current.metadata.HasField("deletion_timestamp"):
                with contextlib.suppress(NotFoundError, ConflictError):
                    await self.client.delete(
                        "pods", current.metadata.name, current.metadata.namespace,
                        grace_period_seconds=0, uid=current.metadata.uid,
                    )  # fmt: skip
            else:
                return None
        try:
            created = await self.client.create(mirror_of(static))
        except AlreadyExistsError:
            return None
        return created

    # ---------------------------------------------------------------- events and probes

    def _event(self, pod: core_pb2.Pod, type_: str, reason: str, message: str, field_path: str) -> None:
        ref = reference(pod)
        ref.field_path = field_path
        try:
            self.recorder.event(ref, type_, reason, message)
        except RuntimeError:
            log.debug("event dropped: no loop", reason=reason)

    def _probe_changed(self, uid: str, name: str, kind: str, message: str) -> None:
        pod = self.desired(uid)
        if pod is not None and message:
            label = {LIVENESS: "Liveness", READINESS: "Readiness", STARTUP: "Startup"}[kind]
            path = f"spec.containers{{{name}}}"
            self._event(pod, "Warning", "Unhealthy", f"{label} probe failed: {message}", path)
        self.workers.wake(uid)

    # ---------------------------------------------------------------- loops

    async def _relist_loop(self) -> None:
        """Like Kubernetes' PLEG: list the runtime, wake the pods whose containers changed."""
        previous: dict[str, tuple[str, int]] = {}
        while True:
            try:
                sandboxes, containers = await asyncio.gather(
                    self.runtime.list_sandboxes({keys.MANAGED_BY: "true"}),
                    self.runtime.list_containers({keys.MANAGED_BY: "true"}),
                )
            except CRIError as exc:
                log.debug("relist failed", error=str(exc))
                await asyncio.sleep(self.config.relist_period)
                continue
            current: dict[str, tuple[str, int]] = {}
            for sb in sandboxes:
                current[sb.id] = (sb.labels.get(keys.POD_UID, ""), sb.state)
            for c in containers:
                current[c.id] = (c.labels.get(keys.POD_UID, ""), c.state)
            changed = {uid for key, (uid, state) in current.items() if previous.get(key) != (uid, state)}
            changed |= {uid for key, (uid, _) in previous.items() if key not in current}
            previous = current
            self._runtime_uids = {uid for uid, _ in current.values() if uid}
            desired = self._desired_uids()
            for uid in changed:
                if uid and (uid in desired or self.ready.is_set()):
                    self.workers.wake(uid)
            if self.ready.is_set():
                for uid in self._runtime_uids - desired:
                    if uid not in self.workers:
                        self.workers.wake(uid)
            RUNNING_PODS.set(sum(1 for sb in sandboxes if sb.state == cri.SANDBOX_READY))
            RUNNING_CONTAINERS.set(sum(1 for c in containers if c.state == cri.CONTAINER_RUNNING))
            await asyncio.sleep(self.config.relist_period)

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.housekeeping_interval)
            if self.config.pod_manifest_path is not None:
                fresh = read_static_pods(self.config.pod_manifest_path, self.config.node_name)
                gone = set(self.static_pods) - set(fresh)
                added = set(fresh) - set(self.static_pods)
                removed_pods = [self.static_pods[uid] for uid in gone]
                self.static_pods = fresh
                for uid in added | gone:
                    self.workers.wake(uid)
                for pod in removed_pods:
                    await self._delete_mirror_if_orphaned(pod)
            desired = self._desired_uids()
            for uid in self.volumes.known_pods():
                if uid not in desired and uid not in self.workers and uid not in self._runtime_uids:
                    await self.volumes.teardown(uid)

    async def _delete_mirror_if_orphaned(self, static: core_pb2.Pod) -> None:
        key = f"{static.metadata.namespace}/{static.metadata.name}"
        current = self.pods.store.get(key)
        if (
            isinstance(current, core_pb2.Pod)
            and current.metadata.annotations.get(CONFIG_MIRROR) == static.metadata.uid
        ):
            with contextlib.suppress(APIStatusError):
                await self.client.delete(
                    "pods", current.metadata.name, current.metadata.namespace,
                    grace_period_seconds=0, uid=current.metadata.uid,
                )  # fmt: skip

    async def _node_status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.node_status_update_frequency)
            was_ready = self.node_status.health.network_ready
            try:
                await self.node_status.update()
            except APIStatusError as exc:
                log.info("node status not written", error=str(exc))
            if self.node_status.health.network_ready and not was_ready:
                for uid in self._desired_uids():
                    self.workers.wake(uid)

    async def _lease_loop(self) -> None:
        while True:
            try:
                await renew(
                    self.client, self.config.node_name, self.config.node_lease_duration_seconds, self.node_uid
                )
            except APIStatusError as exc:
                log.info("lease not renewed", error=str(exc))
            await asyncio.sleep(self.config.lease_renew_interval)

    async def _gc_loop(self) -> None:
        gc = GarbageCollector(self.config, self.runtime)
        while True:
            await asyncio.sleep(self.config.gc_interval)
            try:
                await gc.collect()
            except CRIError as exc:
                log.info("garbage collection failed", error=str(exc))

    def find_pod(self, namespace: str, name: str) -> core_pb2.Pod | None:
        """A pod this kubelet runs, by name (static pods by their mirror's name)."""
        for pod in self.static_pods.values():
            if pod.metadata.namespace == namespace and pod.metadata.name == name:
                return pod
        found = self.pods.store.get(f"{namespace}/{name}")
        if isinstance(found, core_pb2.Pod) and not is_mirror(found):
            return found
        return None
