"""Who may call the Node API, and the certificate it serves with.

Kubernetes' kubelet serves :10250 over TLS, authenticates callers by client certificate
(--client-ca-file) and asks the apiserver whether the user may use `nodes/proxy` (logs, exec,
attach, port-forward) or `nodes/stats`. pinnace keeps that decision on the node: the Node API
is the apiserver's back end, so it admits the apiserver's kubelet-client identity (CN
kube-apiserver-kubelet-client, which `pinnace bootstrap` issues) and members of system:masters,
and refuses everyone else with the kubelet's own message,
`Forbidden (user=..., verb=..., resource=nodes, subresource=...)`.

Without --tls-cert-file/--tls-private-key-file the kubelet generates a self-signed serving
certificate in <root-dir>/pki and keeps it across restarts, as Kubernetes does."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509

from services.kubelet.config import KubeletConfig
from services.machinery import pki

APISERVER_KUBELET_CLIENT = "kube-apiserver-kubelet-client"
SYSTEM_MASTERS = "system:masters"
SERVING_PAIR_NAME = "kubelet"


class NodeAPIConfigError(ValueError):
    """The Node API's security flags do not make a usable server."""


class CallerCheck:
    """Admits only the apiserver's kubelet-client identity and system:masters. The TLS layer
    has already verified the certificate against the client CA; this reads its CN and O."""

    def refusal(self, context: Any, verb: str, subresource: str) -> str | None:
        """None when the caller may proceed; otherwise the message to refuse it with."""
        user, groups = _identity(context)
        if user == APISERVER_KUBELET_CLIENT or SYSTEM_MASTERS in groups:
            return None
        return f"Forbidden (user={user}, verb={verb}, resource=nodes, subresource={subresource})"


def _identity(context: Any) -> tuple[str, tuple[str, ...]]:
    certificates = (context.auth_context() or {}).get("x509_pem_cert") or []
    if not certificates:
        return "system:anonymous", ()
    try:
        return pki.identity_of(x509.load_pem_x509_certificate(certificates[0]))
    except ValueError:
        return "system:anonymous", ()


def serving_pair(config: KubeletConfig) -> pki.KeyPair:
    """--tls-cert-file/--tls-private-key-file, else the self-signed pair in <root-dir>/pki
    (created on first start with the node's names and addresses, then reused)."""
    if bool(config.tls_cert_file) != bool(config.tls_private_key_file):
        raise NodeAPIConfigError("--tls-cert-file and --tls-private-key-file go together")
    if config.tls_cert_file:
        try:
            return pki.KeyPair(
                Path(config.tls_cert_file).read_bytes(), Path(config.tls_private_key_file).read_bytes()
            )
        except OSError as exc:
            raise NodeAPIConfigError(f"cannot read the serving certificate: {exc}") from None
    directory = config.root_dir / "pki"
    if all((directory / f"{SERVING_PAIR_NAME}.{ext}").exists() for ext in ("crt", "key")):
        return pki.KeyPair.read(directory, SERVING_PAIR_NAME)
    names = tuple(dict.fromkeys((config.node_name, socket.gethostname(), "localhost")))
    pair = pki.self_signed(config.node_name, dns_names=names, ip_addresses=_serving_ips(config))
    pair.write(directory, SERVING_PAIR_NAME)
    return pair


def _serving_ips(config: KubeletConfig) -> tuple[str, ...]:
    candidates = [config.node_ip, config.node_api_listen.rpartition(":")[0].strip("[]"), "127.0.0.1"]
    ips: list[str] = []
    for text in candidates:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if not address.is_unspecified and str(address) not in ips:
            ips.append(str(address))
    return tuple(ips)


def server_credentials(config: KubeletConfig) -> grpc.ServerCredentials | None:
    """TLS with required client certificates; None (plaintext, no authentication) only with
    --node-api-insecure."""
    if config.node_api_insecure:
        return None
    if not config.client_ca_file:
        raise NodeAPIConfigError(
            "the Node API needs --client-ca-file to authenticate the apiserver "
            "(or --node-api-insecure for a plaintext development node)"
        )
    try:
        client_ca = Path(config.client_ca_file).read_bytes()
    except OSError as exc:
        raise NodeAPIConfigError(f"cannot read --client-ca-file: {exc}") from None
    pair = serving_pair(config)
    return grpc.ssl_server_credentials(
        [(pair.key_pem, pair.cert_pem)], root_certificates=client_ca, require_client_auth=True
    )
