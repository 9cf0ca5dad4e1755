"""secret, configMap, downwardAPI and projected volumes: their keys (or the chosen items)
projected as files with their modes, written atomically and rewritten when the object
changes. A projected volume gathers several sources in one directory, including the pod's
service-account token (TokenRequest bound to the pod, refreshed by the token manager)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pinnace.api.authentication.v1 import authentication_pb2
from pinnace.api.core.v1 import core_pb2
from services.kubelet.downward import DownwardError, field_value, resource_value
from services.kubelet.objects import ObjectSource
from services.kubelet.tokens import TokenManager
from services.kubelet.volumes.atomic_writer import write_atomic
from services.kubelet.volumes.errors import VolumeError

SECRET_PLUGIN = "kubernetes.io~secret"
CONFIGMAP_PLUGIN = "kubernetes.io~configmap"
DOWNWARD_PLUGIN = "kubernetes.io~downward-api"
PROJECTED_PLUGIN = "kubernetes.io~projected"


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
    return _write(path, _downward(pod, list(source.items), default_mode, pod_ip, host_ip, allocatable or {}))


def _downward(
    pod: core_pb2.Pod,
    items: list[core_pb2.DownwardAPIVolumeFile],
    default_mode: int,
    pod_ip: str,
    host_ip: str,
    allocatable: Mapping[str, str],
) -> dict[str, tuple[bytes, int]]:
    payload: dict[str, tuple[bytes, int]] = {}
    first = pod.spec.containers[0].name if pod.spec.containers else ""
    for item in items:
        try:
            if item.HasField("field_ref"):
                value = field_value(pod, item.field_ref.field_path, pod_ip, host_ip)
            elif item.HasField("resource_field_ref"):
                value = resource_value(pod, first, item.resource_field_ref, allocatable)
            else:
                continue
        except DownwardError as exc:
            raise VolumeError(str(exc)) from None
        payload[item.path] = (value.encode(), item.mode if item.HasField("mode") else default_mode)
    return payload


async def setup_projected(
    path: Path,
    pod: core_pb2.Pod,
    source: core_pb2.ProjectedVolumeSource,
    objects: ObjectSource,
    tokens: TokenManager,
    *,
    pod_ip: str = "",
    host_ip: str = "",
    allocatable: Mapping[str, str] | None = None,
) -> bool:
    """Every source's files in one atomic set (Kubernetes' projected volume plugin)."""
    mode = source.default_mode if source.HasField("default_mode") else 0o644
    namespace = pod.metadata.namespace
    payload: dict[str, tuple[bytes, int]] = {}
    for projection in source.sources:
        if projection.HasField("secret"):
            ref = projection.secret
            secret = await objects.secret(namespace, ref.name)
            if secret is None and not ref.optional:
                raise VolumeError(f'secret "{ref.name}" not found')
            data = dict(secret.data) if secret is not None else {}
            payload |= _project(f"Secret {namespace}/{ref.name}", data, list(ref.items), mode, ref.optional)
        elif projection.HasField("config_map"):
            cm_ref = projection.config_map
            cm = await objects.config_map(namespace, cm_ref.name)
            if cm is None and not cm_ref.optional:
                raise VolumeError(f'configmap "{cm_ref.name}" not found')
            values = ({k: v.encode() for k, v in cm.data.items()} | dict(cm.binary_data)) if cm else {}
            what = f"ConfigMap {namespace}/{cm_ref.name}"
            payload |= _project(what, values, list(cm_ref.items), mode, cm_ref.optional)
        elif projection.HasField("downward_api"):
            items = list(projection.downward_api.items)
            payload |= _downward(pod, items, mode, pod_ip, host_ip, allocatable or {})
        elif projection.HasField("service_account_token"):
            token = await _token(pod, projection.service_account_token, tokens)
            payload[projection.service_account_token.path] = (token.encode(), mode)
    return _write(path, payload)


async def _token(
    pod: core_pb2.Pod, projection: core_pb2.ServiceAccountTokenProjection, tokens: TokenManager
) -> str:
    """The pod's account's token, bound to the pod (Kubernetes' projected token source)."""
    request = authentication_pb2.TokenRequest()
    if projection.audience:
        request.spec.audiences.append(projection.audience)
    request.spec.expiration_seconds = (
        projection.expiration_seconds if projection.HasField("expiration_seconds") else 3600
    )
    ref = request.spec.bound_object_ref
    ref.api_version, ref.kind, ref.name, ref.uid = "v1", "Pod", pod.metadata.name, pod.metadata.uid
    account = pod.spec.service_account_name or "default"
    try:
        answer = await tokens.token(pod.metadata.namespace, account, request)
    except Exception as exc:
        raise VolumeError(f"failed to fetch token: {exc}") from None
    return answer.status.token


def _write(path: Path, payload: dict[str, tuple[bytes, int]]) -> bool:
    try:
        return write_atomic(path, payload)
    except ValueError as exc:
        raise VolumeError(str(exc)) from None
