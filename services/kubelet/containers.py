"""Starting and stopping one container: image pull per imagePullPolicy, the CRI container
config (command, env, mounts, resources, security context, the annotations that let a
restarted kubelet recognise it), postStart and preStop hooks, graceful stop.

Failures raise StartError with the reason Kubernetes shows in the container's waiting state
(ErrImagePull, ImagePullBackOff, ErrImageNeverPull, CreateContainerConfigError,
CreateContainerError, RunContainerError), and the message the user needs."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri
from services.client.events import NORMAL, WARNING
from services.kubelet import labels as keys
from services.kubelet import resources
from services.kubelet.backoff import Backoff
from services.kubelet.cri_client import CRI, CRIError
from services.kubelet.env import EnvError, build_env, expand_command
from services.kubelet.objects import ObjectSource
from services.kubelet.probes import HandlerError, Handlers
from services.kubelet.volumes.errors import VolumeError
from services.kubelet.volumes.manager import Mounted, VolumeManager
from services.machinery.logs import get_logger

log = get_logger(__name__)

EventFunc = Callable[[core_pb2.Pod, str, str, str, str], None]  # pod, type, reason, message, field path


class StartError(Exception):
    def __init__(self, reason: str, message: str, retry_after: float = 0.0) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message, self.retry_after = reason, message, retry_after


@dataclass
class NodeFacts:
    """What container configs need to know about the node."""

    host_ip: str = ""
    memory_capacity: int = 0
    allocatable: Mapping[str, str] | None = None


def field_path(pod: core_pb2.Pod, name: str) -> str:
    init = any(c.name == name for c in pod.spec.init_containers)
    return f"spec.{'initContainers' if init else 'containers'}{{{name}}}"


class ContainerManager:
    def __init__(
        self,
        runtime: CRI,
        volumes: VolumeManager,
        objects: ObjectSource,
        handlers: Handlers,
        backoff: Backoff,
        event: EventFunc,
        node: NodeFacts,
    ) -> None:
        self.runtime = runtime
        self.volumes = volumes
        self.objects = objects
        self.handlers = handlers
        self.backoff = backoff
        self.event = event
        self.node = node

    # ---------------------------------------------------------------- images

    async def ensure_image(self, pod: core_pb2.Pod, container: core_pb2.Container) -> str:
        image = container.image
        policy = container.image_pull_policy or "IfNotPresent"
        path = field_path(pod, container.name)
        present = await self.runtime.image_status(image)
        if present is not None and policy != "Always":
            return str(present.id)
        if policy == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            self.event(pod, WARNING, "ErrImageNeverPull", message, path)
            raise StartError("ErrImageNeverPull", message)
        key = ("image", pod.metadata.uid, container.name)
        wait = self.backoff.in_backoff(key)
        if wait > 0:
            message = f'Back-off pulling image "{image}"'
            self.event(pod, NORMAL, "BackOff", message, path)
            raise StartError("ImagePullBackOff", message, retry_after=wait)
        self.event(pod, NORMAL, "Pulling", f'Pulling image "{image}"', path)
        started = time.monotonic()
        try:
            ref = await self.runtime.pull_image(image)
        except CRIError as exc:
            delay = self.backoff.next(key)
            message = f'Failed to pull image "{image}": {exc.details or exc.code.name}'
            self.event(pod, WARNING, "Failed", message, path)
            raise StartError("ErrImagePull", message, retry_after=delay) from None
        self.backoff.forget(key)
        self.event(
            pod,
            NORMAL,
            "Pulled",
            f'Successfully pulled image "{image}" in {time.monotonic() - started:.3f}s',
            path,
        )
        return ref

    # ---------------------------------------------------------------- start

    def _etc_hosts(self, pod: core_pb2.Pod, hostname: str, pod_ip: str) -> Path:
        path = self.volumes.pod_dir(pod.metadata.uid) / "etc-hosts"
        lines = [
            "# Kubernetes-managed hosts file.",
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "fe00::0\tip6-localnet",
            "fe00::0\tip6-mcastprefix",
            "fe00::1\tip6-allnodes",
            "fe00::2\tip6-allrouters",
        ]
        if pod_ip:
            names = hostname
            if pod.spec.subdomain:
                names = f"{hostname}.{pod.spec.subdomain}.{pod.metadata.namespace}.svc {hostname}"
            lines.append(f"{pod_ip}\t{names}")
        if pod.spec.host_aliases:
            lines.append("")
            lines.append("# Entries added by HostAliases.")
            lines += [f"{a.ip}\t{chr(9).join(a.hostnames)}" for a in pod.spec.host_aliases]
        path.parent.mkdir(parents=True, exist_ok=True)
        content = "\n".join(lines) + "\n"
        if not path.exists() or path.read_text() != content:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(content)
            tmp.replace(path)
        return path

    async def start(
        self,
        pod: core_pb2.Pod,
        container: core_pb2.Container,
        *,
        sandbox_id: str,
        sandbox_config: cri.PodSandboxConfig,
        pod_ip: str,
        mounted: Mapping[str, Mounted],
        restart_count: int,
        init: bool,
    ) -> str:
        path = field_path(pod, container.name)
        image_ref = await self.ensure_image(pod, container)
        try:
            env = await build_env(
                pod,
                container,
                self.objects,
                pod_ip=pod_ip,
                host_ip=self.node.host_ip,
                allocatable=self.node.allocatable,
            )
            mounts = self.volumes.mounts(container, mounted)
            if resources.run_as_non_root(pod, container):
                await self._check_non_root(pod, container, image_ref)
        except (EnvError, VolumeError) as exc:
            message = str(exc)
            self.event(pod, WARNING, "Failed", f"Error: {message}", path)
            raise StartError("CreateContainerConfigError", message) from None
        if not pod.spec.host_network and not any(m.container_path == "/etc/hosts" for m in mounts):
            hosts = self._etc_hosts(pod, sandbox_config.hostname, pod_ip)
            mounts.append(cri.Mount(container_path="/etc/hosts", host_path=str(hosts)))
        annotations = {
            keys.RESTART_COUNT: str(restart_count),
            keys.CONTAINER_HASH: keys.container_hash(container),
            keys.TERMINATION_MESSAGE_POLICY: container.termination_message_policy or "File",
            keys.POD_GRACE: str(
                pod.spec.termination_grace_period_seconds
                if pod.spec.HasField("termination_grace_period_seconds")
                else 30
            ),
        }
        if init:
            annotations[keys.INIT_CONTAINER] = "true"
        if container.termination_message_path:
            message_dir = self.volumes.pod_dir(pod.metadata.uid) / "containers" / container.name
            message_dir.mkdir(parents=True, exist_ok=True)
            message_file = message_dir / secrets.token_hex(4)
            message_file.touch(mode=0o666)
            message_file.chmod(0o666)
            mounts.append(
                cri.Mount(container_path=container.termination_message_path, host_path=str(message_file))
            )
            annotations[keys.TERMINATION_MESSAGE_PATH] = str(message_file)
        config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=container.name, attempt=restart_count),
            image=cri.ImageSpec(image=container.image),
            command=expand_command(list(container.command), env),
            args=expand_command(list(container.args), env),
            working_dir=container.working_dir,
            envs=[cri.KeyValue(key=k, value=v.encode()) for k, v in env],
            mounts=mounts,
            labels=keys.container_labels(pod, container.name),
            annotations=annotations,
            log_path=f"{container.name}/{restart_count}.log",
            stdin=container.stdin,
            stdin_once=container.stdin_once,
            tty=container.tty,
            linux=cri.LinuxContainerConfig(
                resources=resources.linux_resources(pod, container, self.node.memory_capacity),
                security_context=resources.security_context(pod, container),
            ),
        )
        try:
            response = await self.runtime.call(
                "CreateContainer",
                cri.CreateContainerRequest(
                    pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
                ),
            )
        except CRIError as exc:
            message = exc.details or exc.code.name
            self.event(pod, WARNING, "Failed", f"Error: {message}", path)
            raise StartError("CreateContainerError", message) from None
        container_id = str(response.container_id)
        self.event(pod, NORMAL, "Created", f"Created container {container.name}", path)
        try:
            await self.runtime.call("StartContainer", cri.StartContainerRequest(container_id=container_id))
        except CRIError as exc:
            message = exc.details or exc.code.name
            self.event(pod, WARNING, "Failed", f"Error: {message}", path)
            raise StartError("RunContainerError", message) from None
        self.event(pod, NORMAL, "Started", f"Started container {container.name}", path)
        if container.lifecycle.HasField("post_start"):
            await self._post_start(pod, container, container_id, pod_ip)
        return container_id

    async def _check_non_root(self, pod: core_pb2.Pod, container: core_pb2.Container, image_ref: str) -> None:
        ctx = resources.security_context(pod, container)
        if ctx.HasField("run_as_user"):
            if ctx.run_as_user.value == 0:
                raise EnvError("container's runAsUser breaks non-root policy")
            return
        image = await self.runtime.image_status(container.image)
        uid = image.uid.value if image is not None and image.HasField("uid") else 0
        if image is not None and image.username and not image.username.isdigit():
            raise EnvError(
                "container has runAsNonRoot and image has non-numeric user, cannot verify user is non-root"
            )
        if uid == 0:
            raise EnvError("container has runAsNonRoot and image will run as root")

    async def _post_start(
        self, pod: core_pb2.Pod, container: core_pb2.Container, container_id: str, pod_ip: str
    ) -> None:
        grace = (
            pod.spec.termination_grace_period_seconds
            if pod.spec.HasField("termination_grace_period_seconds")
            else 30
        )
        try:
            await self.handlers.run(
                container.lifecycle.post_start, container, container_id, pod_ip, timeout=max(grace, 1)
            )
        except (HandlerError, TimeoutError) as exc:
            message = f"PostStartHook failed: {exc}"
            self.event(pod, WARNING, "FailedPostStartHook", message, field_path(pod, container.name))
            await self.stop(
                pod, container.name, container_id, grace=2, reason="FailedPostStartHook", pod_ip=pod_ip
            )
            raise StartError("PostStartHookError", message) from None

    # ---------------------------------------------------------------- stop

    async def stop(
        self,
        pod: core_pb2.Pod | None,
        name: str,
        container_id: str,
        *,
        grace: int,
        reason: str = "Killing",
        message: str = "",
        pod_ip: str = "",
        run_pre_stop: bool = True,
    ) -> None:
        """preStop hook (bounded by the grace period), then StopContainer with what is left."""
        started = time.monotonic()
        spec = None
        if pod is not None:
            spec = next(
                (c for c in (*pod.spec.containers, *pod.spec.init_containers) if c.name == name), None
            )
            self.event(pod, NORMAL, "Killing", message or f"Stopping container {name}", field_path(pod, name))
        if run_pre_stop and spec is not None and spec.lifecycle.HasField("pre_stop") and grace > 0:
            try:
                await asyncio.wait_for(
                    self.handlers.run(spec.lifecycle.pre_stop, spec, container_id, pod_ip, timeout=grace),
                    grace,
                )
            except (HandlerError, TimeoutError) as exc:
                if pod is not None:
                    self.event(
                        pod, WARNING, "FailedPreStopHook", f"PreStopHook failed: {exc}", field_path(pod, name)
                    )
        left = max(0, round(grace - (time.monotonic() - started)))
        if grace > 0:
            left = max(left, 2)
        try:
            await self.runtime.stop_container(container_id, left)
        except CRIError as exc:
            if not exc.not_found:
                raise
        log.info("container stopped", container=name, id=container_id[:12], reason=reason)
