"""Pod sandboxes: a pause container (network `none`, shareable IPC) that holds the pod's
namespaces, wired to the pod network by CNI ADD on its network namespace.

RunPodSandbox undoes everything it created when a step fails; StopPodSandbox and
RemovePodSandbox are idempotent."""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc
from docker import errors as docker_errors

from pinnace.cri.v1 import api_pb2 as cri
from runtime_shims.docker import labels as schema
from runtime_shims.docker import translate
from runtime_shims.docker.backend import Backend
from runtime_shims.docker.cni import Attachment, CNIError, pod_ips, port_mapping_capability
from runtime_shims.docker.errors import CRIError, from_docker
from runtime_shims.docker.metrics import CNI_LATENCY
from services.machinery.logs import get_logger

log = get_logger(__name__)


def create_with_name(backend: Backend, body: dict[str, Any], name: str, what: str) -> str:
    """Create a container; a name left over by an interrupted earlier attempt gets a suffix."""
    api = backend.api
    for attempt in range(3):
        candidate = name if attempt == 0 else f"{name}_{secrets.token_hex(4)}"
        try:
            return str(api.create_container_from_config(body, name=candidate)["Id"])
        except docker_errors.APIError as exc:
            if exc.status_code == 409 and "already in use" in str(exc.explanation):
                continue
            raise
    raise CRIError(grpc.StatusCode.ALREADY_EXISTS, f"{what}: name {name!r} is in use")


def _attachment(record: schema.SandboxRecord, netns: str) -> Attachment:
    md = record.metadata
    capabilities: dict[str, Any] = {}
    ports = port_mapping_capability(record.port_mappings)
    if ports:
        capabilities["portMappings"] = ports
    return Attachment(
        container_id=record.id,
        netns=netns,
        pod_namespace=md.namespace,
        pod_name=md.name,
        pod_uid=md.uid,
        capabilities=capabilities,
    )


class Sandboxes:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.api = backend.api

    # ---------------------------------------------------------------- RunPodSandbox

    def run(self, config: cri.PodSandboxConfig, runtime_handler: str) -> str:
        translate.validate_sandbox(config)
        schema.check_user_labels(dict(config.labels), "config.labels")
        if runtime_handler not in ("", "docker", "runc"):
            raise CRIError(
                grpc.StatusCode.INVALID_ARGUMENT, f"runtime_handler {runtime_handler!r} is not supported"
            )
        created_at = time.time_ns()
        labels = schema.sandbox_labels(
            config, node=self.backend.node, created_at=created_at, runtime_handler=runtime_handler
        )
        body = translate.sandbox_create_body(config, self.backend.config.pause_image, labels)
        name = translate.docker_name(schema.sandbox_container_name(config.metadata))
        made_log_dir = self._make_log_dir(config.log_directory)
        sandbox_id = ""
        try:
            sandbox_id = self._create(body, name)
            record = schema.parse_sandbox(sandbox_id, labels)
            self.api.start(sandbox_id)
            if not record.host_network:
                pid = int(self.api.inspect_container(sandbox_id)["State"]["Pid"])
                self._network_up(record, f"/proc/{pid}/ns/net")
        except BaseException as exc:
            self._undo_run(sandbox_id, made_log_dir)
            if isinstance(exc, docker_errors.DockerException):
                raise from_docker(exc, "run pod sandbox") from exc
            raise
        self.backend.remember_sandbox(record)
        log.info(
            "sandbox ready", sandbox_id=sandbox_id, pod=f"{config.metadata.namespace}/{config.metadata.name}"
        )
        return sandbox_id

    def _create(self, body: dict[str, Any], name: str) -> str:
        try:
            return create_with_name(self.backend, body, name, "run pod sandbox")
        except docker_errors.ImageNotFound:
            log.info("pulling the pause image", image=body["Image"])
            self.api.pull(body["Image"])
            return create_with_name(self.backend, body, name, "run pod sandbox")

    def _make_log_dir(self, directory: str) -> Path | None:
        if not directory:
            return None
        path = Path(directory)
        if path.is_dir():
            return None
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _network_up(self, record: schema.SandboxRecord, netns: str) -> None:
        attachment = _attachment(record, netns)
        with self.backend.sandbox_lock(record.id):
            started = time.perf_counter()
            try:
                self.backend.cni.add(attachment)
            except CNIError as exc:
                raise CRIError(
                    grpc.StatusCode.INTERNAL,
                    f"failed to set up network for sandbox {record.id[:12]}: {exc}",
                ) from exc
            finally:
                CNI_LATENCY.labels("ADD").observe(time.perf_counter() - started)

    def _undo_run(self, sandbox_id: str, made_log_dir: Path | None) -> None:
        if sandbox_id:
            with contextlib.suppress(docker_errors.DockerException):
                self.api.remove_container(sandbox_id, force=True)
            self.backend.cni.remove_cached(sandbox_id)
        if made_log_dir is not None:
            with contextlib.suppress(OSError):
                made_log_dir.rmdir()

    # ---------------------------------------------------------------- Stop / Remove

    def containers_of(self, sandbox_id: str) -> list[dict[str, Any]]:
        filters = {"label": [f"{schema.SANDBOX_ID}={sandbox_id}", f"{schema.NODE}={self.backend.node}"]}
        return list(self.api.containers(all=True, filters=filters))

    def stop(self, sandbox_id: str) -> None:
        try:
            info = self.backend.inspect(sandbox_id, schema.TYPE_SANDBOX, "pod sandbox")
        except CRIError as exc:
            if exc.code == grpc.StatusCode.NOT_FOUND:
                return
            raise
        full_id = info["Id"]
        record = schema.parse_sandbox(full_id, info["Config"]["Labels"])
        for container in self.containers_of(full_id):
            if container.get("State") in ("running", "restarting", "paused"):
                with contextlib.suppress(docker_errors.NotFound):
                    self.api.stop(container["Id"], timeout=0)
        if not record.host_network:
            self._network_down(record, info["State"])
        if info["State"].get("Running"):
            with contextlib.suppress(docker_errors.NotFound):
                self.api.stop(full_id, timeout=self.backend.config.stop_sandbox_grace_seconds)

    def _network_down(self, record: schema.SandboxRecord, state: dict[str, Any]) -> None:
        running = bool(state.get("Running")) and int(state.get("Pid") or 0) > 0
        cni = self.backend.cni
        if not running and cni.cached_result(record.id) is None:
            return
        netns = f"/proc/{state['Pid']}/ns/net" if running else ""
        with self.backend.sandbox_lock(record.id):
            started = time.perf_counter()
            try:
                cni.delete(_attachment(record, netns))
            except CNIError as exc:
                raise CRIError(
                    grpc.StatusCode.INTERNAL,
                    f"failed to tear down network of sandbox {record.id[:12]}: {exc}",
                ) from exc
            finally:
                CNI_LATENCY.labels("DEL").observe(time.perf_counter() - started)

    def remove(self, sandbox_id: str, on_container_removed: Any = None) -> None:
        try:
            info = self.backend.inspect(sandbox_id, schema.TYPE_SANDBOX, "pod sandbox")
        except CRIError as exc:
            if exc.code == grpc.StatusCode.NOT_FOUND:
                return
            raise
        full_id = info["Id"]
        self.stop(full_id)
        for container in self.containers_of(full_id):
            with contextlib.suppress(docker_errors.NotFound):
                self.api.remove_container(container["Id"], force=True)
            if on_container_removed is not None:
                on_container_removed(container["Id"])
        with contextlib.suppress(docker_errors.NotFound):
            self.api.remove_container(full_id, force=True)
        self.backend.cni.remove_cached(full_id)
        self.backend.forget_sandbox(full_id)

    # ---------------------------------------------------------------- Status / List

    def status(self, sandbox_id: str, verbose: bool) -> cri.PodSandboxStatusResponse:
        info = self.backend.inspect(sandbox_id, schema.TYPE_SANDBOX, "pod sandbox")
        record = schema.parse_sandbox(info["Id"], info["Config"]["Labels"])
        state = info["State"]
        ready = bool(state.get("Running"))
        network = cri.PodSandboxNetworkStatus()
        if not record.host_network and ready:
            ips = self._ips(record.id, int(state.get("Pid") or 0))
            if ips:
                network.ip = ips[0]
                network.additional_ips.extend(cri.PodIP(ip=ip) for ip in ips[1:])
        status = cri.PodSandboxStatus(
            id=record.id,
            metadata=record.metadata,
            state=cri.SANDBOX_READY if ready else cri.SANDBOX_NOTREADY,
            created_at=record.created_at,
            network=network,
            linux=cri.LinuxPodSandboxStatus(namespaces=cri.Namespace(options=record.namespace_option())),
            labels=record.labels,
            annotations=record.annotations,
            runtime_handler=record.runtime_handler,
        )
        response = cri.PodSandboxStatusResponse(status=status, timestamp=time.time_ns())
        if verbose:
            response.info["info"] = json.dumps(
                {
                    "pid": state.get("Pid", 0),
                    "image": info["Config"].get("Image"),
                    "name": info.get("Name", ""),
                }
            )
        return response

    def _ips(self, sandbox_id: str, pid: int) -> list[str]:
        result = self.backend.cni.cached_result(sandbox_id)
        if result is not None:
            return pod_ips(result)
        if pid <= 0:
            return []
        # No cached result (written by another runtime or lost): ask the namespace itself.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["nsenter", "-t", str(pid), "-n", "ip", "-o", "-4", "addr", "show", "dev", "eth0"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout
            return [field.split("/")[0] for line in out.splitlines() for field in line.split()[3:4]]
        return []

    def list(self, flt: cri.PodSandboxFilter | None) -> list[cri.PodSandbox]:
        selector = dict(flt.label_selector) if flt is not None else {}
        filters: dict[str, Any] = {
            "label": schema.selector_filters(self.backend.node, schema.TYPE_SANDBOX, selector)
        }
        if flt is not None and flt.id:
            filters["id"] = flt.id
        items = []
        for c in self.api.containers(all=True, filters=filters):
            record = schema.parse_sandbox(c["Id"], c.get("Labels") or {})
            state = cri.SANDBOX_READY if c.get("State") == "running" else cri.SANDBOX_NOTREADY
            if flt is not None and flt.HasField("state") and flt.state.state != state:
                continue
            if flt is not None and flt.id and not c["Id"].startswith(flt.id):
                continue
            items.append(
                cri.PodSandbox(
                    id=record.id,
                    metadata=record.metadata,
                    state=state,
                    created_at=record.created_at,
                    labels=record.labels,
                    annotations=record.annotations,
                    runtime_handler=record.runtime_handler,
                )
            )
        return items

    def require_ready_pid(self, sandbox_id: str) -> tuple[schema.SandboxRecord, int]:
        info = self.backend.inspect(sandbox_id, schema.TYPE_SANDBOX, "pod sandbox")
        if not info["State"].get("Running"):
            raise CRIError(grpc.StatusCode.FAILED_PRECONDITION, f"pod sandbox {sandbox_id!r} is not ready")
        return schema.parse_sandbox(info["Id"], info["Config"]["Labels"]), int(info["State"]["Pid"])
