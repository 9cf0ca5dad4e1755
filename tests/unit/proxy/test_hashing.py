"""Chain names must be Kubernetes' own (interfaces.md 4.2), checked against names seen in
real clusters' iptables-save dumps."""

from services.proxy.hashing import endpoint_chain, join_host_port, port_proto_hash, service_chain


def test_service_chain_names_match_kubernetes() -> None:
    assert service_chain("default/kubernetes:https", "tcp") == "KUBE-SVC-NPX46M4PTMTKRN6Y"
    assert service_chain("kube-system/kube-dns:dns", "udp") == "KUBE-SVC-TCOU7JCQXEZGVUNU"


def test_protocol_is_lower_cased_and_part_of_the_hash() -> None:
    assert port_proto_hash("ns/a:p", "TCP") == port_proto_hash("ns/a:p", "tcp")
    assert port_proto_hash("ns/a:p", "tcp") != port_proto_hash("ns/a:p", "udp")


def test_endpoint_chain_hashes_port_name_protocol_and_endpoint() -> None:
    a = endpoint_chain("ns/a:p", "tcp", "10.244.1.2:8080")
    assert a.startswith("KUBE-SEP-") and len(a) == 25
    assert a != endpoint_chain("ns/a:p", "tcp", "10.244.1.3:8080")
    assert a == endpoint_chain("ns/a:p", "tcp", "10.244.1.2:8080")


def test_join_host_port_brackets_ipv6() -> None:
    assert join_host_port("10.0.0.1", 80) == "10.0.0.1:80"
    assert join_host_port("fd00::1", 80) == "[fd00::1]:80"
