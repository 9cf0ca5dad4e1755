"""CRI configurations into Docker's container-create parameters, with the validation that
turns bad input into INVALID_ARGUMENT before anything is created. Pure functions: no Docker
calls, so the unit tier tests them directly."""

from __future__ import annotations

import re
from typing import Any

from pinnace.cri.v1 import api_pb2 as cri
from runtime_shims.docker.errors import invalid

LOG_DRIVER = {"Type": "json-file", "Config": {"max-size": "50m", "max-file": "2"}}
MIN_MEMORY_BYTES = 6 * 1024 * 1024
_NAME_INVALID = re.compile(r"[^a-zA-Z0-9_.-]")
_PROPAGATION = {
    cri.PROPAGATION_PRIVATE: "rprivate",
    cri.PROPAGATION_HOST_TO_CONTAINER: "rslave",
    cri.PROPAGATION_BIDIRECTIONAL: "rshared",
}
_SYSCTL = re.compile(r"^[a-z0-9_]+([./][a-z0-9_-]+)+$")


def docker_name(name: str) -> str:
    """Docker names are [a-zA-Z0-9][a-zA-Z0-9_.-]*; anything else becomes '-'."""
    cleaned = _NAME_INVALID.sub("-", name)
    return cleaned if cleaned[:1].isalnum() else "x" + cleaned


def validate_sandbox(config: cri.PodSandboxConfig) -> None:
    md = config.metadata
    for field_name in ("name", "namespace", "uid"):
        if not getattr(md, field_name):
            raise invalid(f"config.metadata.{field_name}: Required value")
    for i, port in enumerate(config.port_mappings):
        if not 0 < port.container_port <= 65535:
            raise invalid(f"config.port_mappings[{i}].container_port: must be between 1 and 65535")
        if not 0 <= port.host_port <= 65535:
            raise invalid(f"config.port_mappings[{i}].host_port: must be between 0 and 65535")
    for key in config.linux.sysctls:
        if not _SYSCTL.match(key):
            raise invalid(f"config.linux.sysctls[{key!r}]: not a valid sysctl name")
    if config.log_directory and not config.log_directory.startswith("/"):
        raise invalid("config.log_directory: must be an absolute path")
    modes = config.linux.security_context.namespace_options
    if modes.network in (cri.CONTAINER, cri.TARGET):
        raise invalid("config.linux.security_context.namespace_options.network: must be POD or NODE")
    if modes.ipc in (cri.CONTAINER, cri.TARGET):
        raise invalid("config.linux.security_context.namespace_options.ipc: must be POD or NODE")


def sandbox_host_config(config: cri.PodSandboxConfig) -> dict[str, Any]:
    """HostConfig of a pause container: network none (CNI wires it) or host, a shareable IPC."""
    sc = config.linux.security_context
    modes = sc.namespace_options
    host_config: dict[str, Any] = {
        "NetworkMode": "host" if modes.network == cri.NODE else "none",
        "IpcMode": "host" if modes.ipc == cri.NODE else "shareable",
        "RestartPolicy": {"Name": ""},
        "LogConfig": LOG_DRIVER,
        "Privileged": sc.privileged,
        "ReadonlyRootfs": sc.readonly_rootfs,
    }
    if modes.pid == cri.NODE:
        host_config["PidMode"] = "host"
    if config.linux.cgroup_parent:
        host_config["CgroupParent"] = config.linux.cgroup_parent
    if config.linux.sysctls:
        host_config["Sysctls"] = dict(config.linux.sysctls)
    dns = config.dns_config
    if dns.servers:
        host_config["Dns"] = list(dns.servers)
    if dns.searches:
        host_config["DnsSearch"] = list(dns.searches)
    if dns.options:
        host_config["DnsOptions"] = list(dns.options)
    if sc.seccomp.profile_type == cri.SecurityProfile.Unconfined:
        host_config["SecurityOpt"] = ["seccomp=unconfined"]
    return host_config


def sandbox_create_body(config: cri.PodSandboxConfig, image: str, labels: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Image": image,
        "Labels": labels,
        "HostConfig": sandbox_host_config(config),
    }
    if config.hostname and config.linux.security_context.namespace_options.network != cri.NODE:
        body["Hostname"] = config.hostname
    sc = config.linux.security_context
    if sc.HasField("run_as_user"):
        body["User"] = str(sc.run_as_user.value) + (
            f":{sc.run_as_group.value}" if sc.HasField("run_as_group") else ""
        )
    return body


def validate_resources(res: cri.LinuxContainerResources, path: str) -> None:
    if res.cpu_shares and not 2 <= res.cpu_shares <= 262144:
        raise invalid(f"{path}.cpu_shares: {res.cpu_shares} is outside [2, 262144]")
    if res.cpu_period and not 1000 <= res.cpu_period <= 1_000_000:
        raise invalid(f"{path}.cpu_period: {res.cpu_period} is outside [1000, 1000000] microseconds")
    if res.cpu_quota and res.cpu_quota != -1 and res.cpu_quota < 1000:
        raise invalid(f"{path}.cpu_quota: {res.cpu_quota} must be at least 1000 microseconds (or -1)")
    if res.memory_limit_in_bytes < 0:
        raise invalid(f"{path}.memory_limit_in_bytes: must not be negative")
    if 0 < res.memory_limit_in_bytes < MIN_MEMORY_BYTES:
        raise invalid(
            f"{path}.memory_limit_in_bytes: {res.memory_limit_in_bytes} is below the minimum of 6 MiB"
        )
    swap = res.memory_swap_limit_in_bytes
    if swap and swap != -1 and swap < res.memory_limit_in_bytes:
        raise invalid(f"{path}.memory_swap_limit_in_bytes: must not be below memory_limit_in_bytes")
    if not -1000 <= res.oom_score_adj <= 1000:
        raise invalid(f"{path}.oom_score_adj: {res.oom_score_adj} is outside [-1000, 1000]")
    for name, value in (("cpuset_cpus", res.cpuset_cpus), ("cpuset_mems", res.cpuset_mems)):
        if value and not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", value):
            raise invalid(f"{path}.{name}: {value!r} is not a CPU/node list such as 0-2,4")


def resources_host_config(res: cri.LinuxContainerResources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if res.cpu_shares:
        out["CpuShares"] = res.cpu_shares
    if res.cpu_period:
        out["CpuPeriod"] = res.cpu_period
    if res.cpu_quota:
        out["CpuQuota"] = res.cpu_quota
    if res.memory_limit_in_bytes:
        out["Memory"] = res.memory_limit_in_bytes
        out["MemorySwap"] = res.memory_swap_limit_in_bytes or res.memory_limit_in_bytes
    if res.cpuset_cpus:
        out["CpusetCpus"] = res.cpuset_cpus
    if res.cpuset_mems:
        out["CpusetMems"] = res.cpuset_mems
    return out


def resources_from_host_config(
    host_config: dict[str, Any], oom_score_adj: int
) -> cri.LinuxContainerResources:
    memory = int(host_config.get("Memory") or 0)
    swap = int(host_config.get("MemorySwap") or 0)
    return cri.LinuxContainerResources(
        cpu_period=int(host_config.get("CpuPeriod") or 0),
        cpu_quota=int(host_config.get("CpuQuota") or 0),
        cpu_shares=int(host_config.get("CpuShares") or 0),
        memory_limit_in_bytes=memory,
        oom_score_adj=oom_score_adj,
        cpuset_cpus=host_config.get("CpusetCpus") or "",
        cpuset_mems=host_config.get("CpusetMems") or "",
        memory_swap_limit_in_bytes=swap if memory else 0,
    )


def validate_container(config: cri.ContainerConfig) -> None:
    if not config.metadata.name:
        raise invalid("config.metadata.name: Required value")
    if not config.image.image:
        raise invalid("config.image.image: Required value")
    seen: set[str] = set()
    for i, mount in enumerate(config.mounts):
        where = f"config.mounts[{i}]"
        if not mount.container_path.startswith("/"):
            raise invalid(f"{where}.container_path: {mount.container_path!r} must be an absolute path")
        if mount.container_path.rstrip("/") == "":
            raise invalid(f"{where}.container_path: must not be the root directory")
        if not mount.host_path.startswith("/"):
            raise invalid(f"{where}.host_path: {mount.host_path!r} must be an absolute path")
        if ":" in mount.container_path or ":" in mount.host_path or "," in mount.container_path:
            raise invalid(f"{where}: paths must not contain ':' or ','")
        if mount.container_path in seen:
            raise invalid(f"{where}.container_path: duplicate mount point {mount.container_path!r}")
        seen.add(mount.container_path)
    for i, kv in enumerate(config.envs):
        if not kv.key or "=" in kv.key:
            raise invalid(f"config.envs[{i}].key: {kv.key!r} is not a valid environment variable name")
        try:
            kv.value.decode()
        except UnicodeDecodeError as exc:
            raise invalid(f"config.envs[{i}].value: Docker only carries UTF-8 environment values") from exc
    validate_resources(config.linux.resources, "config.linux.resources")
    sc = config.linux.security_context
    if sc.run_as_user.value < 0 or sc.run_as_group.value < 0:
        raise invalid("config.linux.security_context.run_as_user: must not be negative")
    if sc.HasField("run_as_group") and not (sc.HasField("run_as_user") or sc.run_as_username):
        raise invalid("config.linux.security_context.run_as_group: requires run_as_user or run_as_username")


def _user(sc: cri.LinuxContainerSecurityContext) -> str:
    if sc.HasField("run_as_user"):
        user = str(sc.run_as_user.value)
    elif sc.run_as_username:
        user = sc.run_as_username
    else:
        return ""
    if sc.HasField("run_as_group"):
        user += f":{sc.run_as_group.value}"
    return user


def _capability(name: str) -> str:
    upper = name.upper()
    return upper if upper == "ALL" or upper.startswith("CAP_") else "CAP_" + upper


def namespace_modes(
    sandbox_id: str, sandbox_modes: dict[str, str], container: cri.NamespaceOption | None
) -> dict[str, str]:
    """Network and IPC always follow the sandbox; PID is shared with the pod only when asked."""
    out = {
        "NetworkMode": "host" if sandbox_modes.get("network") == "NODE" else f"container:{sandbox_id}",
        "IpcMode": "host" if sandbox_modes.get("ipc") == "NODE" else f"container:{sandbox_id}",
    }
    pid = sandbox_modes.get("pid", "CONTAINER")
    if container is not None and container.pid != cri.POD:
        pid = cri.NamespaceMode.Name(container.pid)
    elif container is not None:
        pid = "POD"
    if pid == "NODE":
        out["PidMode"] = "host"
    elif pid == "POD":
        out["PidMode"] = f"container:{sandbox_id}"
    elif pid == "TARGET" and container is not None and container.target_id:
        out["PidMode"] = f"container:{container.target_id}"
    return out


def container_create_body(
    config: cri.ContainerConfig,
    *,
    sandbox_id: str,
    sandbox_modes: dict[str, str],
    cgroup_parent: str,
    labels: dict[str, str],
) -> dict[str, Any]:
    sc = config.linux.security_context
    res = config.linux.resources
    binds = []
    for mount in config.mounts:
        options = ["ro" if mount.readonly else "rw", _PROPAGATION[mount.propagation]]
        if mount.selinux_relabel:
            options.append("Z")
        binds.append(f"{mount.host_path}:{mount.container_path}:{','.join(options)}")
    host_config: dict[str, Any] = {
        **namespace_modes(
            sandbox_id, sandbox_modes, sc.namespace_options if sc.HasField("namespace_options") else None
        ),
        "Binds": binds,
        "RestartPolicy": {"Name": ""},
        "LogConfig": LOG_DRIVER,
        "Privileged": sc.privileged,
        "ReadonlyRootfs": sc.readonly_rootfs,
        "CapAdd": [_capability(c) for c in sc.capabilities.add_capabilities] or None,
        "CapDrop": [_capability(c) for c in sc.capabilities.drop_capabilities] or None,
        "GroupAdd": [str(g) for g in sc.supplemental_groups] or None,
        "OomScoreAdj": res.oom_score_adj,
        **resources_host_config(res),
    }
    security_opt = []
    if sc.no_new_privs:
        security_opt.append("no-new-privileges")
    if sc.seccomp.profile_type == cri.SecurityProfile.Unconfined:
        security_opt.append("seccomp=unconfined")
    if sc.apparmor.profile_type == cri.SecurityProfile.Unconfined:
        security_opt.append("apparmor=unconfined")
    if security_opt:
        host_config["SecurityOpt"] = security_opt
    if sc.masked_paths:
        host_config["MaskedPaths"] = list(sc.masked_paths)
    if sc.readonly_paths:
        host_config["ReadonlyPaths"] = list(sc.readonly_paths)
    if cgroup_parent:
        host_config["CgroupParent"] = cgroup_parent
    if config.devices:
        host_config["Devices"] = [
            {
                "PathOnHost": d.host_path,
                "PathInContainer": d.container_path,
                "CgroupPermissions": d.permissions or "rwm",
            }
            for d in config.devices
        ]
    body: dict[str, Any] = {
        "Image": config.image.image,
        "Labels": labels,
        "Env": [f"{kv.key}={kv.value.decode()}" for kv in config.envs],
        "Tty": config.tty,
        "OpenStdin": config.stdin,
        "StdinOnce": config.stdin_once,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "HostConfig": {k: v for k, v in host_config.items() if v is not None},
    }
    if config.command:
        body["Entrypoint"] = list(config.command)
        body["Cmd"] = list(config.args) or None
    elif config.args:
        body["Cmd"] = list(config.args)
    if config.working_dir:
        body["WorkingDir"] = config.working_dir
    user = _user(sc)
    if user:
        body["User"] = user
    if config.stop_signal:
        body["StopSignal"] = signal_name(config.stop_signal)
    return body


def signal_name(value: int) -> str:
    name = cri.Signal.Name(value).removeprefix("SIGNAL_")
    return name.replace("MINPLUS", "MIN+").replace("MAXMINUS", "MAX-")
