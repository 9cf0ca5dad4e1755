"""A pod template as `kubectl rollout history --revision=N` describes it (the describe
printer's "Pod Template" block), so a user can see what a revision ran."""

from __future__ import annotations

from pinnace.api.core.v1 import core_pb2


def _ports(container: core_pb2.Container) -> tuple[str, str]:
    if not container.ports:
        return "<none>", "<none>"
    ports = ", ".join(f"{p.container_port}/{p.protocol or 'TCP'}" for p in container.ports)
    hosts = ", ".join(f"{p.host_port}/{p.protocol or 'TCP'}" for p in container.ports)
    return ports, hosts


def _env(container: core_pb2.Container) -> list[str]:
    lines = []
    for var in container.env:
        if var.HasField("value_from"):
            source = var.value_from
            if source.HasField("field_ref"):
                value = f"({source.field_ref.api_version or 'v1'}:{source.field_ref.field_path})"
            elif source.HasField("config_map_key_ref"):
                cm = source.config_map_key_ref
                value = f"<set to the key '{cm.key}' of config map '{cm.name}'>"
            elif source.HasField("secret_key_ref"):
                secret = source.secret_key_ref
                value = f"<set to the key '{secret.key}' in secret '{secret.name}'>"
            else:
                value = "<set from a resource field>"
        else:
            value = var.value
        lines.append(f"{var.name}:\t{value}")
    return lines


def _map_lines(indent: str, title: str, values: dict[str, str], separator: str) -> list[str]:
    if not values:
        return [f"{indent}{title}:\t<none>"]
    items = [f"{k}{separator}{v}" for k, v in sorted(values.items())]
    return [f"{indent}{title}:\t{items[0]}"] + [f"{indent}\t{item}" for item in items[1:]]


def _volume_source(volume: core_pb2.Volume) -> str:
    if volume.HasField("empty_dir"):
        return "EmptyDir (a temporary directory that shares a pod's lifetime)"
    if volume.HasField("host_path"):
        return f"HostPath (bare host directory volume) {volume.host_path.path}"
    if volume.HasField("secret"):
        return f"Secret (a volume populated by a Secret) {volume.secret.secret_name}"
    if volume.HasField("config_map"):
        return f"ConfigMap (a volume populated by a ConfigMap) {volume.config_map.name}"
    if volume.HasField("persistent_volume_claim"):
        claim = volume.persistent_volume_claim.claim_name
        return f"PersistentVolumeClaim (a reference to a PersistentVolumeClaim) {claim}"
    return "<unknown>"


def describe_lines(template: core_pb2.PodTemplateSpec) -> list[str]:
    """Tab-separated lines (key<TAB>value), laid out by `align`."""
    lines = ["Pod Template:"]
    lines += _map_lines("  ", "Labels", dict(template.metadata.labels), "=")
    if template.metadata.annotations:
        lines += _map_lines("  ", "Annotations", dict(template.metadata.annotations), ": ")
    if template.spec.service_account_name:
        lines.append(f"  Service Account:\t{template.spec.service_account_name}")
    for title, containers in (
        ("Init Containers", template.spec.init_containers),
        ("Containers", template.spec.containers),
    ):
        if not containers and title == "Init Containers":
            continue
        lines.append(f"  {title}:")
        for container in containers:
            port, host_port = _ports(container)
            lines.append(f"   {container.name}:")
            lines.append(f"    Image:\t{container.image}")
            lines.append(f"    Port:\t{port}")
            lines.append(f"    Host Port:\t{host_port}")
            if container.command:
                lines.append("    Command:")
                lines += [f"      {part}" for part in container.command]
            if container.args:
                lines.append("    Args:")
                lines += [f"      {part}" for part in container.args]
            env = _env(container)
            if env:
                lines.append("    Environment:")
                lines += [f"      {line}" for line in env]
            else:
                lines.append("    Environment:\t<none>")
            if container.volume_mounts:
                lines.append("    Mounts:")
                for mount in container.volume_mounts:
                    mode = "ro" if mount.read_only else "rw"
                    lines.append(f"      {mount.mount_path} from {mount.name} ({mode})")
            else:
                lines.append("    Mounts:\t<none>")
    if template.spec.volumes:
        lines.append("  Volumes:")
        for volume in template.spec.volumes:
            lines.append(f"   {volume.name}:")
            lines.append(f"    Type:\t{_volume_source(volume)}")
    else:
        lines.append("  Volumes:\t<none>")
    return lines


def align(lines: list[str]) -> str:
    """Expand the first tab of every line to one shared column, as kubectl's tabwriter does
    for a describe block."""
    width = max((len(line.split("\t", 1)[0]) for line in lines if "\t" in line), default=0) + 2
    out = []
    for line in lines:
        key, tab, value = line.partition("\t")
        out.append(f"{key.ljust(width)}{value}" if tab else line)
    return "\n".join(out) + "\n"


def describe(template: core_pb2.PodTemplateSpec) -> str:
    return align(describe_lines(template))
