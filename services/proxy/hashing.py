"""Kubernetes' chain-name hash, so our KUBE-SVC-/KUBE-SEP- names are the ones operators know
from `iptables-save` dumps of real clusters (interfaces.md 4.2)."""

from __future__ import annotations

import base64
import hashlib


def _hash16(text: str) -> str:
    """First 16 characters of base32(sha256): base32 maps each 5 bytes to 8 characters on its
    own, so encoding only the first 10 bytes gives the same 16 characters, 3x cheaper (it is
    computed for every chain of a 10,000-service full sync)."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:10]).decode()


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    return _hash16(service_port_name + protocol.lower())


def service_chain(service_port_name: str, protocol: str) -> str:
    """KUBE-SVC-<hash>: 25 characters, inside iptables' 28-character limit."""
    return "KUBE-SVC-" + port_proto_hash(service_port_name, protocol)


def endpoint_chain(service_port_name: str, protocol: str, endpoint: str) -> str:
    """KUBE-SEP-<hash> for one endpoint, `endpoint` being Go's net.JoinHostPort form."""
    return "KUBE-SEP-" + _hash16(service_port_name + protocol.lower() + endpoint)


def join_host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
