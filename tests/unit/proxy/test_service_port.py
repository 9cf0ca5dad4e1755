from pinnace.api.core.v1 import core_pb2
from services.proxy.service_port import (
    DEFAULT_AFFINITY_SECONDS,
    Endpoint,
    ServicePortName,
    endpoints_ports,
    service_ports,
)


def service(**spec: object) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = "web", "default"
    svc.spec.cluster_ip = "10.96.0.10"
    for key, value in spec.items():
        setattr(svc.spec, key, value)
    return svc


def test_every_port_of_a_service_is_its_own_service_port() -> None:
    svc = service(type="NodePort")
    svc.spec.ports.add(name="http", port=80, protocol="TCP", node_port=30080)
    svc.spec.ports.add(name="dns", port=53, protocol="UDP")
    svc.spec.ports.add(name="sctp", port=9, protocol="SCTP")
    svc.spec.external_ips.append("192.168.56.200")
    svc.status.load_balancer.ingress.add(ip="192.168.56.201")
    ports = service_ports(svc)
    http = ports[ServicePortName("default", "web", "http", "tcp")]
    assert (http.cluster_ip, http.port, http.node_port) == ("10.96.0.10", 80, 30080)
    assert http.external_ips == ("192.168.56.200",) and http.load_balancer_ips == ("192.168.56.201",)
    assert ServicePortName("default", "web", "dns", "udp") in ports
    assert len(ports) == 2  # SCTP is not proxied


def test_service_port_name_string_is_kubernetes() -> None:
    assert str(ServicePortName("ns", "svc", "http", "tcp")) == "ns/svc:http"
    assert str(ServicePortName("ns", "svc", "", "tcp")) == "ns/svc"


def test_headless_and_external_name_services_are_not_proxied() -> None:
    headless = service(cluster_ip="None")
    headless.spec.ports.add(port=80)
    external = service(type="ExternalName", external_name="example.org")
    external.spec.ports.add(port=80)
    assert service_ports(headless) == {} and service_ports(external) == {}


def test_client_ip_affinity_timeout_defaults_to_three_hours() -> None:
    svc = service(session_affinity="ClientIP")
    svc.spec.ports.add(port=80)
    assert next(iter(service_ports(svc).values())).affinity_seconds == DEFAULT_AFFINITY_SECONDS
    svc.spec.session_affinity_config.client_ip.timeout_seconds = 5
    assert next(iter(service_ports(svc).values())).affinity_seconds == 5
    plain = service()
    plain.spec.ports.add(port=80)
    assert not next(iter(service_ports(plain).values())).client_ip_affinity


def test_endpoints_are_matched_by_port_name_and_only_ready_addresses_count() -> None:
    eps = core_pb2.Endpoints()
    eps.metadata.name, eps.metadata.namespace = "web", "default"
    subset = eps.subsets.add()
    subset.addresses.add(ip="10.244.1.3", node_name="n1")
    subset.addresses.add(ip="10.244.1.2")
    subset.not_ready_addresses.add(ip="10.244.1.9")
    subset.ports.add(name="http", port=8080, protocol="TCP")
    subset.ports.add(name="dns", port=5353, protocol="UDP")
    result = endpoints_ports(eps)
    assert result[ServicePortName("default", "web", "http", "tcp")] == (
        Endpoint("10.244.1.2", 8080),
        Endpoint("10.244.1.3", 8080, "n1"),
    )
    assert [str(e) for e in result[ServicePortName("default", "web", "dns", "udp")]] == [
        "10.244.1.2:5353",
        "10.244.1.3:5353",
    ]
