"""What every manager shares: the Docker API client, the CNI runtime, the settings, and a
cache of what the labels of this shim's sandboxes and containers say. The cache only saves
inspect round trips on the hot path (CreateContainer, StartContainer); it is rebuilt from
Docker on a miss, so the shim stays stateless."""

from __future__ import annotations

import threading
from typing import Any

import docker
from docker import errors as docker_errors

from runtime_shims.docker import labels as schema
from runtime_shims.docker.cni import CNIRuntime
from runtime_shims.docker.config import ShimConfig
from runtime_shims.docker.errors import from_docker, invalid, not_found

DOCKER_API_VERSION = "1.41"


def docker_api(config: ShimConfig) -> Any:
    if config.docker_host:
        return docker.APIClient(
            base_url=config.docker_host, version=DOCKER_API_VERSION, max_pool_size=config.workers
        )
    kwargs = docker.utils.kwargs_from_env()
    return docker.APIClient(version=DOCKER_API_VERSION, max_pool_size=config.workers, **kwargs)


class Backend:
    def __init__(self, config: ShimConfig, api: Any | None = None) -> None:
        self.config = config
        self.api = api if api is not None else docker_api(config)
        self.cni = CNIRuntime(config.cni_conf_dir, config.cni_bin_dirs, config.cni_cache_dir)
        self._lock = threading.Lock()
        self._sandboxes: dict[str, schema.SandboxRecord] = {}
        self._containers: dict[str, tuple[schema.ContainerRecord, bool]] = {}
        self._sandbox_locks: dict[str, threading.Lock] = {}

    @property
    def node(self) -> str:
        return self.config.node_name

    def sandbox_lock(self, sandbox_id: str) -> threading.Lock:
        """Serialises network setup and teardown of one sandbox (CNI forbids concurrent ADD/DEL)."""
        with self._lock:
            return self._sandbox_locks.setdefault(sandbox_id, threading.Lock())

    def inspect(self, container_id: str, kind: str, what: str) -> dict[str, Any]:
        """Inspect one of this shim's objects of one kind; anything else is NOT_FOUND."""
        if not container_id:
            raise invalid(f"{what}: an id is required")
        try:
            info: dict[str, Any] = self.api.inspect_container(container_id)
        except docker_errors.NotFound as exc:
            raise not_found(f"{what} {container_id!r} not found") from exc
        except docker_errors.DockerException as exc:
            raise from_docker(exc, what) from exc
        labels = info.get("Config", {}).get("Labels") or {}
        if labels.get(schema.TYPE) != kind or labels.get(schema.NODE) != self.node:
            raise not_found(f"{what} {container_id!r} not found")
        return info

    # ---------------------------------------------------------------- caches

    def sandbox_record(self, sandbox_id: str) -> schema.SandboxRecord:
        with self._lock:
            record = self._sandboxes.get(sandbox_id)
        if record is not None:
            return record
        info = self.inspect(sandbox_id, schema.TYPE_SANDBOX, "pod sandbox")
        record = schema.parse_sandbox(info["Id"], info["Config"]["Labels"])
        self.remember_sandbox(record)
        return record

    def remember_sandbox(self, record: schema.SandboxRecord) -> None:
        with self._lock:
            self._sandboxes[record.id] = record

    def forget_sandbox(self, sandbox_id: str) -> None:
        with self._lock:
            self._sandboxes.pop(sandbox_id, None)
            self._sandbox_locks.pop(sandbox_id, None)

    def container_record(self, container_id: str) -> tuple[schema.ContainerRecord, bool]:
        """The record and whether the container has a TTY."""
        with self._lock:
            cached = self._containers.get(container_id)
        if cached is not None:
            return cached
        info = self.inspect(container_id, schema.TYPE_CONTAINER, "container")
        entry = (
            schema.parse_container(info["Id"], info["Config"]["Labels"]),
            bool(info["Config"].get("Tty")),
        )
        self.remember_container(*entry)
        return entry

    def remember_container(self, record: schema.ContainerRecord, tty: bool) -> None:
        with self._lock:
            self._containers[record.id] = (record, tty)

    def forget_container(self, container_id: str) -> None:
        with self._lock:
            self._containers.pop(container_id, None)
