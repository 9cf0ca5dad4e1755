"""Application containers: created to join their sandbox's network and IPC namespaces (and
PID when the pod shares it), with their output copied into the CRI log file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from docker import errors as docker_errors
from docker.utils import socket as docker_socket

from pinnace.cri.v1 import api_pb2 as cri
from runtime_shims.docker import labels as schema
from runtime_shims.docker import translate
from runtime_shims.docker.backend import Backend
from runtime_shims.docker.errors import CRIError, from_docker, invalid, not_found
from runtime_shims.docker.logs import LogCopier, timestamp_ns
from runtime_shims.docker.sandbox import create_with_name
from services.machinery.logs import get_logger

log = get_logger(__name__)

MAX_EXEC_OUTPUT = 16 * 1024 * 1024 - 64 * 1024
_STATES = {
    "created": cri.CONTAINER_CREATED,
    "running": cri.CONTAINER_RUNNING,
    "paused": cri.CONTAINER_RUNNING,
    "restarting": cri.CONTAINER_RUNNING,
    "exited": cri.CONTAINER_EXITED,
    "dead": cri.CONTAINER_EXITED,
}


def state_of(docker_state: str) -> Any:
    return _STATES.get(docker_state, cri.CONTAINER_UNKNOWN)


def exit_reason(state: dict[str, Any]) -> str:
    """Kubernetes' reasons for a finished container."""
    if state.get("OOMKilled"):
        return "OOMKilled"
    return "Completed" if int(state.get("ExitCode", 0)) == 0 else "Error"


class Containers:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.api = backend.api
        self._copiers: dict[str, LogCopier] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- Create / Start

    def create(
        self, sandbox_id: str, config: cri.ContainerConfig, sandbox_config: cri.PodSandboxConfig
    ) -> str:
        translate.validate_container(config)
        schema.check_user_labels(dict(config.labels), "config.labels")
        if not sandbox_id:
            raise invalid("pod_sandbox_id: Required value")
        sandbox = self.backend.sandbox_record(sandbox_id)
        log_path = ""
        if config.log_path:
            log_path = (
                config.log_path
                if config.log_path.startswith("/")
                else str(Path(sandbox.log_directory or "/var/log/pods") / config.log_path)
            )
        labels = schema.container_labels(
            config,
            node=self.backend.node,
            sandbox_id=sandbox.id,
            created_at=time.time_ns(),
            log_path=log_path,
        )
        body = translate.container_create_body(
            config,
            sandbox_id=sandbox.id,
            sandbox_modes=sandbox.namespaces,
            cgroup_parent=sandbox_config.linux.cgroup_parent,
            labels=labels,
        )
        name = translate.docker_name(schema.container_name(config.metadata, sandbox.metadata))
        try:
            container_id = create_with_name(self.backend, body, name, "create container")
        except docker_errors.ImageNotFound as exc:
            raise not_found(
                f"create container: image {config.image.image!r} not found; pull it first"
            ) from exc
        except docker_errors.NotFound as exc:
            self.backend.forget_sandbox(sandbox.id)
            raise not_found(f"create container: {exc.explanation}") from exc
        except docker_errors.DockerException as exc:
            raise from_docker(exc, "create container") from exc
        if log_path:
            try:
                Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                with contextlib.suppress(docker_errors.DockerException):
                    self.api.remove_container(container_id, force=True)
                raise CRIError(grpc.StatusCode.INTERNAL, f"create container: log directory: {exc}") from exc
        self.backend.remember_container(schema.parse_container(container_id, labels), config.tty)
        return container_id

    def start(self, container_id: str) -> None:
        record, tty = self.backend.container_record(container_id)
        try:
            self.api.start(record.id)
        except docker_errors.DockerException as exc:
            raise from_docker(exc, f"start container {container_id}") from exc
        if record.log_path:
            self._follow(record.id, Path(record.log_path), tty)

    def _follow(self, container_id: str, path: Path, tty: bool) -> None:
        with self._lock:
            current = self._copiers.get(container_id)
            if current is not None and current.alive:
                return
            copier = LogCopier(self.api, container_id, path, tty=tty)
            self._copiers[container_id] = copier
        copier.start()

    def resume_logs(self) -> int:
        """After a restart: follow again every container whose output may not be copied yet."""
        filters = {"label": [f"{schema.TYPE}={schema.TYPE_CONTAINER}", f"{schema.NODE}={self.backend.node}"]}
        resumed = 0
        for c in self.api.containers(all=True, filters=filters):
            labels = c.get("Labels") or {}
            if c.get("State") == "created" or not labels.get(schema.LOG_PATH):
                continue
            try:
                record, tty = self.backend.container_record(c["Id"])
            except CRIError:
                continue
            self._follow(record.id, Path(record.log_path), tty)
            resumed += 1
        return resumed

    def _drop_copier(self, container_id: str) -> None:
        with self._lock:
            copier = self._copiers.pop(container_id, None)
        if copier is not None:
            copier.stop()

    def close(self) -> None:
        with self._lock:
            copiers = list(self._copiers.values())
            self._copiers.clear()
        for copier in copiers:
            copier.stop()

    # ---------------------------------------------------------------- Stop / Remove

    def stop(self, container_id: str, timeout: int) -> None:
        record, _ = self.backend.container_record(container_id)
        try:
            self.api.stop(record.id, timeout=max(0, int(timeout)))
        except docker_errors.NotFound as exc:
            self.backend.forget_container(record.id)
            raise not_found(f"container {container_id!r} not found") from exc
        except docker_errors.DockerException as exc:
            raise from_docker(exc, f"stop container {container_id}") from exc

    def remove(self, container_id: str) -> None:
        try:
            record, _ = self.backend.container_record(container_id)
        except CRIError as exc:
            if exc.code == grpc.StatusCode.NOT_FOUND:
                return
            raise
        self.forget(record.id)
        try:
            self.api.remove_container(record.id, force=True)
        except docker_errors.NotFound:
            return
        except docker_errors.DockerException as exc:
            raise from_docker(exc, f"remove container {container_id}") from exc

    def forget(self, container_id: str) -> None:
        self._drop_copier(container_id)
        self.backend.forget_container(container_id)

    # ---------------------------------------------------------------- List / Status

    def list(self, flt: cri.ContainerFilter | None) -> list[cri.Container]:
        selector = dict(flt.label_selector) if flt is not None else {}
        label_filters = schema.selector_filters(self.backend.node, schema.TYPE_CONTAINER, selector)
        sandbox_prefix = flt.pod_sandbox_id if flt is not None else ""
        if len(sandbox_prefix) == 64:
            label_filters.append(f"{schema.SANDBOX_ID}={sandbox_prefix}")
        filters: dict[str, Any] = {"label": label_filters}
        if flt is not None and flt.id:
            filters["id"] = flt.id
        out = []
        for c in self.api.containers(all=True, filters=filters):
            record = schema.parse_container(c["Id"], c.get("Labels") or {})
            state = state_of(c.get("State", ""))
            if flt is not None and flt.HasField("state") and flt.state.state != state:
                continue
            if flt is not None and flt.id and not c["Id"].startswith(flt.id):
                continue
            if sandbox_prefix and not record.sandbox_id.startswith(sandbox_prefix):
                continue
            out.append(
                cri.Container(
                    id=record.id,
                    pod_sandbox_id=record.sandbox_id,
                    metadata=record.metadata,
                    image=cri.ImageSpec(image=record.image),
                    image_ref=c.get("ImageID", ""),
                    image_id=c.get("ImageID", ""),
                    state=state,
                    created_at=record.created_at,
                    labels=record.labels,
                    annotations=record.annotations,
                )
            )
        return out

    def status(self, container_id: str, verbose: bool) -> cri.ContainerStatusResponse:
        info = self.backend.inspect(container_id, schema.TYPE_CONTAINER, "container")
        record = schema.parse_container(info["Id"], info["Config"]["Labels"])
        state = info["State"]
        cri_state = state_of(state.get("Status", ""))
        finished_at = timestamp_ns(state.get("FinishedAt", "")) if cri_state == cri.CONTAINER_EXITED else 0
        host_config = info.get("HostConfig") or {}
        status = cri.ContainerStatus(
            id=record.id,
            metadata=record.metadata,
            state=cri_state,
            created_at=record.created_at,
            started_at=timestamp_ns(state.get("StartedAt", "")),
            finished_at=finished_at,
            exit_code=int(state.get("ExitCode", 0)) if cri_state == cri.CONTAINER_EXITED else 0,
            image=cri.ImageSpec(image=record.image),
            image_ref=info.get("Image", ""),
            image_id=info.get("Image", ""),
            reason=exit_reason(state) if cri_state == cri.CONTAINER_EXITED else "",
            message=state.get("Error", ""),
            labels=record.labels,
            annotations=record.annotations,
            mounts=record.mount_messages(),
            log_path=record.log_path,
            resources=cri.ContainerResources(
                linux=translate.resources_from_host_config(
                    host_config, int(host_config.get("OomScoreAdj") or 0)
                )
            ),
        )
        if record.user:
            status.user.linux.uid = int(record.user.get("uid", 0))
            status.user.linux.gid = int(record.user.get("gid", 0))
            status.user.linux.supplemental_groups.extend(int(g) for g in record.user.get("groups", []))
        response = cri.ContainerStatusResponse(status=status)
        if verbose:
            response.info["info"] = json.dumps(
                {"pid": state.get("Pid", 0), "sandboxID": record.sandbox_id, "name": info.get("Name", "")}
            )
        return response

    # ---------------------------------------------------------------- Update / Reopen

    def update_resources(self, container_id: str, res: cri.LinuxContainerResources) -> None:
        translate.validate_resources(res, "linux")
        record, _ = self.backend.container_record(container_id)
        kwargs: dict[str, Any] = {}
        if res.cpu_shares:
            kwargs["cpu_shares"] = res.cpu_shares
        if res.cpu_period:
            kwargs["cpu_period"] = res.cpu_period
        if res.cpu_quota:
            kwargs["cpu_quota"] = res.cpu_quota
        if res.memory_limit_in_bytes:
            kwargs["mem_limit"] = res.memory_limit_in_bytes
            kwargs["memswap_limit"] = res.memory_swap_limit_in_bytes or res.memory_limit_in_bytes
        if res.cpuset_cpus:
            kwargs["cpuset_cpus"] = res.cpuset_cpus
        if res.cpuset_mems:
            kwargs["cpuset_mems"] = res.cpuset_mems
        if not kwargs:
            return
        try:
            self.api.update_container(record.id, **kwargs)
        except docker_errors.DockerException as exc:
            raise from_docker(exc, f"update container {container_id}") from exc

    def reopen_log(self, container_id: str) -> None:
        info = self.backend.inspect(container_id, schema.TYPE_CONTAINER, "container")
        if not info["State"].get("Running"):
            raise CRIError(grpc.StatusCode.FAILED_PRECONDITION, f"container {container_id!r} is not running")
        record = schema.parse_container(info["Id"], info["Config"]["Labels"])
        if not record.log_path:
            return
        with self._lock:
            copier = self._copiers.get(record.id)
        if copier is not None and copier.alive:
            copier.reopen()
        else:
            self._follow(record.id, Path(record.log_path), bool(info["Config"].get("Tty")))

    # ---------------------------------------------------------------- ExecSync

    def exec_sync(self, container_id: str, cmd: Sequence[str], timeout: int) -> cri.ExecSyncResponse:
        if not cmd:
            raise invalid("cmd: Required value")
        record, _ = self.backend.container_record(container_id)
        try:
            exec_id = self.api.exec_create(record.id, list(cmd), stdout=True, stderr=True)["Id"]
            raw = self.api.exec_start(exec_id, socket=True)
        except docker_errors.DockerException as exc:
            raise from_docker(exc, f"exec in container {container_id}") from exc
        deadline = time.monotonic() + timeout if timeout > 0 else None
        stdout, stderr = bytearray(), bytearray()
        sock: socket.socket = getattr(raw, "_sock", raw)
        try:
            for stream, payload in self._exec_frames(raw, sock, deadline):
                target = stdout if stream == docker_socket.STDOUT else stderr
                if len(target) < MAX_EXEC_OUTPUT:
                    target.extend(payload[: MAX_EXEC_OUTPUT - len(target)])
        except TimeoutError as exc:
            self._kill_exec(exec_id)
            raise CRIError(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"command {cmd!r} timed out after {timeout}s"
            ) from exc
        finally:
            with contextlib.suppress(OSError):
                raw.close()
        exit_code = int(self.api.exec_inspect(exec_id).get("ExitCode") or 0)
        return cri.ExecSyncResponse(stdout=bytes(stdout), stderr=bytes(stderr), exit_code=exit_code)

    @staticmethod
    def _exec_frames(raw: Any, sock: socket.socket, deadline: float | None) -> Any:
        """Docker's multiplexed exec stream, read straight off the socket under a deadline."""

        def recv_exact(size: int) -> bytes | None:
            data = bytearray()
            while len(data) < size:
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    sock.settimeout(remaining)
                try:
                    chunk = sock.recv(size - len(data))
                except TimeoutError as exc:
                    raise TimeoutError from exc
                if not chunk:
                    return None
                data.extend(chunk)
            return bytes(data)

        while True:
            header = recv_exact(8)
            if header is None:
                return
            stream, size = header[0], int.from_bytes(header[4:8], "big")
            payload = recv_exact(size)
            if payload is None:
                return
            yield stream, payload

    def _kill_exec(self, exec_id: str) -> None:
        with contextlib.suppress(docker_errors.DockerException, OSError, ValueError):
            pid = int(self.api.exec_inspect(exec_id).get("Pid") or 0)
            if pid > 0:
                os.kill(pid, signal.SIGKILL)
