"""secret, configMap and downwardAPI volumes: their keys (or the chosen items) projected as
files with their modes, written atomically and rewritten when the object changes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pinnace.api.core.v1 import core_pb2
from services.kubelet.downward import DownwardError, field_value, resource_value
from services.kubelet.objects import ObjectSource
from services.kubelet.volumes.atomic_writer import write_atomic
from services.kubelet.volumes.errors import VolumeError

SECRET_PLUGIN = "kubernetes.io~secret"
CONFIGMAP_PLUGIN = "kubernetes.io~configmap"
DOWNWARD_PLUGIN = "kubernetes.io~downward-api"


def _project(
    what: str,
    data: Mapping[str, bytes],
    items: list[core_pb2.KeyToPath],
    default_mode: int,
    optional: bool,
) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    payload: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item.key not in data:
            if optional:
                continue
            raise VolumeError(f"couldn't find key {item.key} in {what}")
        payload[item.path] = (data[item.key], item.mode if item.HasField("mode") else default_mode)
    return payload


async def setup_secret(
    path: Path, namespace: str, source: core_pb2.SecretVolumeSource, objects: ObjectSource
) -> bool:
    mode = source.default_mode if source.HasField("default_mode") else 0o644
    secret = await objects.secret(namespace, source.secret_name)
    if secret is None:
        if source.optional:
            return _write(path, {})
        raise VolumeError(f'secret "{source.secret_name}" not found')
    data = dict(secret.data)
    return _write(
        path,
        _project(f"Secret {namespace}/{source.secret_name}", data, list(source.items), mode, source.optional),
    )


async def setup_config_map(
    path: Path, namespace: str, source: core_pb2.ConfigMapVolumeSource, objects: ObjectSource
) -> bool:
    mode = source.default_mode if source.HasField("default_mode") else 0o644
    cm = await objects.config_map(namespace, source.name)
    if cm is None:
        if source.optional:
            return _write(path, {})
        raise VolumeError(f'configmap "{source.name}" not found')
    data = {k: v.encode() for k, v in cm.data.items()} | dict(cm.binary_data)
    return _write(
        path,
        _project(f"ConfigMap {namespace}/{source.name}", data, list(source.items), mode, source.optional),
    )


def setup_downward(
    path: Path,
    pod: core_pb2.Pod,
    source: core_pb2.DownwardAPIVolumeSource,
    *,
    pod_ip: str = "",
    host_ip: str = "",
    allocatable: Mapping[str, str] | None = None,
) -> bool:
    default_mode = source.default_mode if source.HasField("default_mode") else 0o644
    payload: dict[str, tuple[bytes, int]] = {}
    first = pod.spec.containers[0].name if pod.spec.containers else ""
    for item in source.items:
        try:
            if item.HasField("field_ref"):
                value = field_value(pod, item.field_ref.field_path, pod_ip, host_ip)
            elif item.HasField("resource_field_ref"):
                value = resource_value(pod, first, item.resource_field_ref, allocatable or {})
            else:
                continue
        except DownwardError as exc:
            raise VolumeError(str(exc)) from None
        payload[item.path] = (value.encode(), item.mode if item.HasField("mode") else default_mode)
    return _write(path, payload)


def _write(path: Path, payload: dict[str, tuple[bytes, int]]) -> bool:
    try:
        return write_atomic(path, payload)
    except ValueError as exc:
        raise VolumeError(str(exc)) from None
