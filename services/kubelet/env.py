"""A container's environment, in Kubernetes' order: the docker-links style variables of the
services (the `kubernetes` master service always, the pod's namespace's services when
enableServiceLinks), then envFrom, then env, each later source overriding earlier names;
`$(VAR)` references in values expand against what is defined before them.

A missing secret/configMap (or key) that is not optional raises EnvError, which the sync
reports as the container's CreateContainerConfigError."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pinnace.api.core.v1 import core_pb2
from services.kubelet.downward import DownwardError, field_value, resource_value
from services.kubelet.objects import ObjectSource

MASTER_NAMESPACE = "default"
MASTER_SERVICE = "kubernetes"


class EnvError(Exception):
    """The environment cannot be built (Kubernetes' CreateContainerConfigError)."""


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' third_party/forked/golang/expansion: `$(VAR)` becomes VAR's value when it is
    defined and stays as written otherwise; `$$` is a literal `$`."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "$" and i + 1 < len(text):
            following = text[i + 1]
            if following == "$":
                out.append("$")
                i += 2
                continue
            if following == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    value = lookup(name) if name else None
                    out.append(value if value is not None else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(char)
        i += 1
    return "".join(out)


def _env_name(service_name: str) -> str:
    return service_name.upper().replace("-", "_")


def service_variables(services: list[core_pb2.Service]) -> dict[str, str]:
    """{NAME}_SERVICE_HOST, {NAME}_SERVICE_PORT[_{PORTNAME}], {NAME}_PORT and
    {NAME}_PORT_{port}_{PROTO}[_PROTO|_PORT|_ADDR] for every service with a cluster IP."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s.metadata.name):
        ip = svc.spec.cluster_ip
        if not ip or ip == "None" or not svc.spec.ports:
            continue
        name = _env_name(svc.metadata.name)
        host = f"[{ip}]" if ":" in ip else ip
        first = svc.spec.ports[0]
        env[f"{name}_SERVICE_HOST"] = ip
        env[f"{name}_SERVICE_PORT"] = str(first.port)
        for port in svc.spec.ports:
            if port.name:
                env[f"{name}_SERVICE_PORT_{_env_name(port.name)}"] = str(port.port)
        env[f"{name}_PORT"] = f"{(first.protocol or 'TCP').lower()}://{host}:{first.port}"
        for port in svc.spec.ports:
            proto = (port.protocol or "TCP").upper()
            prefix = f"{name}_PORT_{port.port}_{proto}"
            env[prefix] = f"{proto.lower()}://{host}:{port.port}"
            env[f"{prefix}_PROTO"] = proto.lower()
            env[f"{prefix}_PORT"] = str(port.port)
            env[f"{prefix}_ADDR"] = ip
    return env


def visible_services(pod: core_pb2.Pod, services: list[core_pb2.Service]) -> list[core_pb2.Service]:
    """The master service, plus the pod namespace's services when service links are on (a
    service of the pod's namespace wins over the master service of the same name)."""
    links = pod.spec.enable_service_links if pod.spec.HasField("enable_service_links") else True
    chosen: dict[str, core_pb2.Service] = {}
    for svc in services:
        ns = svc.metadata.namespace
        if ns == MASTER_NAMESPACE and svc.metadata.name == MASTER_SERVICE:
            chosen.setdefault(svc.metadata.name, svc)
    for svc in services:
        if links and svc.metadata.namespace == pod.metadata.namespace:
            chosen[svc.metadata.name] = svc
    return list(chosen.values())


async def build_env(
    pod: core_pb2.Pod,
    container: core_pb2.Container,
    objects: ObjectSource,
    *,
    pod_ip: str = "",
    host_ip: str = "",
    allocatable: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    ns = pod.metadata.namespace
    env: dict[str, str] = service_variables(visible_services(pod, objects.services()))
    for source in container.env_from:
        if source.HasField("config_map_ref"):
            ref = source.config_map_ref
            cm = await objects.config_map(ns, ref.name)
            if cm is None:
                if ref.optional:
                    continue
                raise EnvError(f'configmap "{ref.name}" not found')
            values = dict(cm.data)
        elif source.HasField("secret_ref"):
            sref = source.secret_ref
            secret = await objects.secret(ns, sref.name)
            if secret is None:
                if sref.optional:
                    continue
                raise EnvError(f'secret "{sref.name}" not found')
            values = {k: v.decode(errors="replace") for k, v in secret.data.items()}
        else:
            continue
        for key, value in values.items():
            env[source.prefix + key] = value
    for var in container.env:
        if var.HasField("value_from"):
            found = await _value_from(pod, container, var, objects, pod_ip, host_ip, allocatable or {})
            if found is not None:
                env[var.name] = found
        else:
            env[var.name] = expand(var.value, env.get)
    return list(env.items())


async def _value_from(
    pod: core_pb2.Pod,
    container: core_pb2.Container,
    var: core_pb2.EnvVar,
    objects: ObjectSource,
    pod_ip: str,
    host_ip: str,
    allocatable: Mapping[str, str],
) -> str | None:
    source = var.value_from
    ns = pod.metadata.namespace
    try:
        if source.HasField("field_ref"):
            return field_value(pod, source.field_ref.field_path, pod_ip, host_ip)
        if source.HasField("resource_field_ref"):
            return resource_value(pod, container.name, source.resource_field_ref, allocatable)
    except DownwardError as exc:
        raise EnvError(str(exc)) from None
    if source.HasField("secret_key_ref"):
        ref = source.secret_key_ref
        secret = await objects.secret(ns, ref.name)
        if secret is None or ref.key not in secret.data:
            if ref.optional:
                return None
            what = f'secret "{ref.name}"' if secret is None else f'key "{ref.key}" in secret "{ref.name}"'
            raise EnvError(f"{what} not found")
        return secret.data[ref.key].decode(errors="replace")
    if source.HasField("config_map_key_ref"):
        cref = source.config_map_key_ref
        cm = await objects.config_map(ns, cref.name)
        if cm is None or cref.key not in cm.data:
            if cref.optional:
                return None
            what = (
                f'configmap "{cref.name}"' if cm is None else f'key "{cref.key}" in configmap "{cref.name}"'
            )
            raise EnvError(f"{what} not found")
        return cm.data[cref.key]
    return None


def expand_command(args: list[str], env: list[tuple[str, str]]) -> list[str]:
    """command and args may reference the container's variables as $(VAR) too."""
    values = dict(env)
    return [expand(arg, values.get) for arg in args]
