"""The pod sandbox's CRI config: hostname, DNS, port mappings, namespaces, sysctls and the
labels that carry the pod's identity (how the kubelet finds the pod again after a restart)."""

from __future__ import annotations

from pathlib import Path

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri
from services.kubelet import labels as keys

_PROTOCOLS = {"TCP": cri.TCP, "UDP": cri.UDP, "SCTP": cri.SCTP}
MAX_DNS_SEARCHES = 32
HOST_RESOLV_CONF = Path("/etc/resolv.conf")


def hostname(pod: core_pb2.Pod) -> str:
    """spec.hostname or the pod name, cut to 63 characters at a clean boundary."""
    name = pod.spec.hostname or pod.metadata.name
    return name[:63].rstrip("-.")


def _host_resolv(path: Path = HOST_RESOLV_CONF) -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    try:
        text = path.read_text()
    except OSError:
        return servers, searches, options
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] == "search":
            searches = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return servers, searches, options


def dns_config(
    pod: core_pb2.Pod, cluster_dns: list[str], cluster_domain: str, host_resolv: Path = HOST_RESOLV_CONF
) -> cri.DNSConfig:
    """Kubernetes' dns policies: ClusterFirst (the cluster DNS with the namespace's search
    path, ndots:5), ClusterFirstWithHostNet, Default (the node's resolv.conf), None (only
    dnsConfig); dnsConfig is merged in. ClusterFirst without a cluster DNS falls back to
    Default, as Kubernetes does."""
    policy = pod.spec.dns_policy or "ClusterFirst"
    if policy == "ClusterFirst" and pod.spec.host_network:
        policy = "Default"
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "ClusterFirst" and cluster_dns:
        ns = pod.metadata.namespace
        servers = list(cluster_dns)
        searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        _, host_searches, _ = _host_resolv(host_resolv)
        searches += [s for s in host_searches if s not in searches]
        options = ["ndots:5"]
    elif policy in ("ClusterFirst", "Default"):
        servers, searches, options = _host_resolv(host_resolv)
    extra = pod.spec.dns_config
    servers += [s for s in extra.nameservers if s not in servers]
    searches += [s for s in extra.searches if s not in searches]
    merged = {o.split(":", 1)[0]: o for o in options}
    for option in extra.options:
        merged[option.name] = f"{option.name}:{option.value}" if option.HasField("value") else option.name
    return cri.DNSConfig(
        servers=servers[:3], searches=searches[:MAX_DNS_SEARCHES], options=list(merged.values())
    )


def port_mappings(pod: core_pb2.Pod) -> list[cri.PortMapping]:
    mappings = []
    for container in pod.spec.containers:
        for port in container.ports:
            if port.host_port:
                mappings.append(
                    cri.PortMapping(
                        protocol=_PROTOCOLS.get(port.protocol or "TCP", cri.TCP),
                        container_port=port.container_port,
                        host_port=port.host_port,
                        host_ip=port.host_ip,
                    )
                )
    return mappings


def log_directory(logs_dir: Path, pod: core_pb2.Pod) -> Path:
    meta = pod.metadata
    return logs_dir / f"{meta.namespace}_{meta.name}_{meta.uid}"


def sandbox_config(
    pod: core_pb2.Pod,
    attempt: int,
    *,
    logs_dir: Path,
    cluster_dns: list[str],
    cluster_domain: str,
) -> cri.PodSandboxConfig:
    spec = pod.spec
    meta = pod.metadata
    namespaces = cri.NamespaceOption(
        network=cri.NODE if spec.host_network else cri.POD,
        pid=cri.NODE if spec.host_pid else (cri.POD if spec.share_process_namespace else cri.CONTAINER),
        ipc=cri.NODE if spec.host_ipc else cri.POD,
    )
    security = cri.LinuxSandboxSecurityContext(
        namespace_options=namespaces, supplemental_groups=list(spec.security_context.supplemental_groups)
    )
    if spec.security_context.HasField("run_as_user"):
        security.run_as_user.value = spec.security_context.run_as_user
    if spec.security_context.HasField("run_as_group"):
        security.run_as_group.value = spec.security_context.run_as_group
    annotations = dict(meta.annotations)
    grace = spec.termination_grace_period_seconds if spec.HasField("termination_grace_period_seconds") else 30
    annotations[keys.POD_GRACE] = str(grace)
    name = hostname(pod)
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(
            name=meta.name, uid=meta.uid, namespace=meta.namespace, attempt=attempt
        ),
        hostname=name,
        log_directory=str(log_directory(logs_dir, pod)),
        dns_config=dns_config(pod, cluster_dns, cluster_domain),
        port_mappings=port_mappings(pod),
        labels=keys.pod_labels(pod),
        annotations=annotations,
        linux=cri.LinuxPodSandboxConfig(
            security_context=security, sysctls={s.name: s.value for s in spec.security_context.sysctls}
        ),
    )
