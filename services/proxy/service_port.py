"""What the proxy needs to know about a service port and its endpoints, flattened out of the
API objects into small immutable values.

Both proxier modes work per service port (`ServicePortName`, Kubernetes' proxy.ServicePortName),
and a sync only touches the ports whose values changed, so the values are frozen dataclasses:
comparing the old and the new value is how the change tracker decides what a sync must do.
"""

from __future__ import annotations

from dataclasses import dataclass

from pinnace.api.core.v1 import core_pb2

# Kubernetes' DefaultClientIPServiceAffinitySeconds (3 h) when ClientIP has no timeout.
DEFAULT_AFFINITY_SECONDS = 10800
SUPPORTED_PROTOCOLS = ("tcp", "udp")
# Annotation the Endpoints controller sets (Kubernetes' EndpointsLastChangeTriggerTime); the
# network programming latency is measured from it when present.
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


@dataclass(frozen=True, order=True)
class ServicePortName:
    namespace: str
    name: str
    port: str
    protocol: str  # lower case: tcp or udp

    def __str__(self) -> str:
        """Kubernetes' String(): the chain hash and every rule comment are built from it."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base


@dataclass(frozen=True)
class ServiceInfo:
    """One port of one service, with everything either mode programs for it."""

    cluster_ip: str
    port: int
    protocol: str
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    affinity_seconds: int = 0  # 0: no ClientIP affinity
    # externalTrafficPolicy Local (NodePort and LoadBalancer services): traffic from outside
    # the cluster goes to this node's endpoints only, with its source address kept.
    external_local: bool = False
    # internalTrafficPolicy Local: ClusterIP traffic goes to this node's endpoints only.
    internal_local: bool = False
    # LoadBalancer + Local: the port kube-proxy's health server answers on for this service.
    health_check_node_port: int = 0

    @property
    def client_ip_affinity(self) -> bool:
        return self.affinity_seconds > 0

    @property
    def has_external(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = ""

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


ServicesMap = dict[ServicePortName, ServiceInfo]
EndpointsMap = dict[ServicePortName, tuple[Endpoint, ...]]


def _is_proxied(svc: core_pb2.Service) -> bool:
    """Headless and ExternalName services have no virtual IP to program."""
    ip = svc.spec.cluster_ip
    return bool(ip) and ip != "None" and svc.spec.type != "ExternalName"


def service_ports(svc: core_pb2.Service) -> ServicesMap:
    """Every proxied port of a Service (SCTP is not supported and is skipped)."""
    if not _is_proxied(svc):
        return {}
    affinity = 0
    if svc.spec.session_affinity == "ClientIP":
        cfg = svc.spec.session_affinity_config.client_ip
        affinity = cfg.timeout_seconds if cfg.HasField("timeout_seconds") else 0
        affinity = affinity or DEFAULT_AFFINITY_SECONDS
    lb_ips = tuple(ing.ip for ing in svc.status.load_balancer.ingress if ing.ip)
    external_local = (
        svc.spec.type in ("NodePort", "LoadBalancer") and svc.spec.external_traffic_policy == "Local"
    )
    internal_local = svc.spec.internal_traffic_policy == "Local"
    health_port = svc.spec.health_check_node_port if external_local else 0
    result: ServicesMap = {}
    for port in svc.spec.ports:
        protocol = (port.protocol or "TCP").lower()
        if protocol not in SUPPORTED_PROTOCOLS:
            continue
        name = ServicePortName(svc.metadata.namespace, svc.metadata.name, port.name, protocol)
        result[name] = ServiceInfo(
            cluster_ip=svc.spec.cluster_ip,
            port=port.port,
            protocol=protocol,
            node_port=port.node_port,
            external_ips=tuple(svc.spec.external_ips),
            load_balancer_ips=lb_ips,
            affinity_seconds=affinity,
            external_local=external_local,
            internal_local=internal_local,
            health_check_node_port=health_port,
        )
    return result


def endpoints_ports(eps: core_pb2.Endpoints) -> EndpointsMap:
    """Ready addresses per service port; the port is matched to the service's by name, as
    Kubernetes' Endpoints do (a single unnamed port has the name "")."""
    collected: dict[ServicePortName, set[Endpoint]] = {}
    for subset in eps.subsets:
        for port in subset.ports:
            protocol = (port.protocol or "TCP").lower()
            if protocol not in SUPPORTED_PROTOCOLS:
                continue
            name = ServicePortName(eps.metadata.namespace, eps.metadata.name, port.name, protocol)
            bucket = collected.setdefault(name, set())
            for address in subset.addresses:
                if address.ip:
                    bucket.add(Endpoint(address.ip, port.port, address.node_name))
    return {name: tuple(sorted(found)) for name, found in collected.items() if found}
