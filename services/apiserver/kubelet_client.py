"""How the apiserver reaches a node's kubelet (its Node API) for the proxy subresources.

The address is the Node's first address of a preferred type (--kubelet-preferred-address-types,
InternalIP first) and the port its status.daemonEndpoints.kubeletEndpoint.Port (10250 when the
kubelet did not report one). The connection is TLS with the apiserver's kubelet-client
certificate (--kubelet-client-certificate/--kubelet-client-key). As in Kubernetes, the kubelet's
serving certificate is verified only when --kubelet-certificate-authority is given; without it
the apiserver accepts whatever certificate the kubelet presents (gRPC always verifies, so the
dialer first reads the kubelet's certificate over a plain TLS handshake and then trusts exactly
that one for the call). --kubelet-insecure-plaintext dials kubelets that serve plaintext
(`pinnace-kubelet --node-api-insecure`), for development only."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors

DEFAULT_KUBELET_PORT = 10250
DEFAULT_ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DIAL_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class KubeletTarget:
    node: str
    host: str
    port: int

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class KubeletClientConfig:
    client_certificate: str = ""
    client_key: str = ""
    certificate_authority: str = ""
    preferred_address_types: tuple[str, ...] = DEFAULT_ADDRESS_TYPES
    insecure_plaintext: bool = False


def target_of(node: core_pb2.Node, preferred: tuple[str, ...] = DEFAULT_ADDRESS_TYPES) -> KubeletTarget:
    """Where the node's kubelet listens; Kubernetes' message when no address fits."""
    for kind in preferred:
        for address in node.status.addresses:
            if address.type == kind and address.address:
                port = node.status.daemon_endpoints.kubelet_endpoint.port or DEFAULT_KUBELET_PORT
                return KubeletTarget(node.metadata.name, address.address, port)
    known = ", ".join(f"{a.type}={a.address}" for a in node.status.addresses)
    raise errors.internal(f"no preferred addresses found; known addresses: [{known}]")


class KubeletDialer:
    def __init__(self, config: KubeletClientConfig) -> None:
        self.config = config
        if bool(config.client_certificate) != bool(config.client_key):
            raise ValueError("--kubelet-client-certificate and --kubelet-client-key go together")
        self._cert = _read(config.client_certificate)
        self._key = _read(config.client_key)
        self._ca = _read(config.certificate_authority)

    @contextlib.asynccontextmanager
    async def channel(self, target: KubeletTarget) -> AsyncIterator[grpc.aio.Channel]:
        """A channel to the target's Node API, closed when the block ends."""
        options: list[tuple[str, object]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if self.config.insecure_plaintext:
            channel = grpc.aio.insecure_channel(target.address, options=options)
        else:
            trusted = self._ca
            if trusted is None:
                trusted = await self._presented_certificate(target)
                name = _name_for(trusted, target.host)
                if name is not None:
                    options.append(("grpc.ssl_target_name_override", name))
            credentials = grpc.ssl_channel_credentials(trusted, self._key, self._cert)
            channel = grpc.aio.secure_channel(target.address, credentials, options=options)
        try:
            yield channel
        finally:
            await channel.close(None)

    async def _presented_certificate(self, target: KubeletTarget) -> bytes:
        """The kubelet's serving certificate, read without verifying it (Kubernetes' default
        when no --kubelet-certificate-authority is given)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        if self.config.client_certificate:
            context.load_cert_chain(self.config.client_certificate, self.config.client_key)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port, ssl=context), DIAL_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise errors.APIError(
                "ServiceUnavailable", f"error dialing backend: {target.address}: {exc or 'timed out'}"
            ) from None
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.transport.abort()  # no TLS close_notify exchange: the peer need not answer
        return ssl.DER_cert_to_PEM_cert(der).encode()


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


def _name_for(certificate_pem: bytes, host: str) -> str | None:
    """A name the certificate carries, for gRPC's host check, when `host` is not one of them."""
    cert = x509.load_pem_x509_certificate(certificate_pem)
    names: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += alt.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in alt.get_values_for_type(x509.IPAddress)]
    with contextlib.suppress(ValueError):
        host = str(ipaddress.ip_address(host))
    if host in names:
        return None
    if names:
        return names[0]
    common = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(common[0].value) if common else None
