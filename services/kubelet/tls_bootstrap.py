"""The kubelet's TLS bootstrap (--bootstrap-kubeconfig, --kubeconfig), as Kubernetes' kubelet
does it: when the kubeconfig is missing, unreadable, or its client certificate has expired,
the kubelet authenticates with the bootstrap token of the bootstrap kubeconfig, asks for a
client certificate with a CertificateSigningRequest, and writes the kubeconfig it then uses.
A valid kubeconfig is used as it is; the bootstrap kubeconfig is not even read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import structlog
from cryptography import x509

from services.client import jointoken
from services.client.config import ConfigError, Credentials, load

log = structlog.get_logger("kubelet")


class BootstrapError(RuntimeError):
    """Neither a usable --kubeconfig nor a way to get one."""


def usable(kubeconfig: Path, now: dt.datetime | None = None) -> Credentials | None:
    """The kubeconfig's credentials if it holds a client certificate valid now."""
    if not kubeconfig.exists():
        return None
    try:
        credentials = load(kubeconfig)
        cert = x509.load_pem_x509_certificate(credentials.cert_pem)
    except (ConfigError, OSError, ValueError) as exc:
        log.warning("kubeconfig unusable; bootstrapping", kubeconfig=str(kubeconfig), error=str(exc))
        return None
    moment = now or dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= moment < cert.not_valid_after_utc:
        log.warning("client certificate expired; bootstrapping", kubeconfig=str(kubeconfig))
        return None
    return credentials


async def ensure_credentials(
    kubeconfig: Path,
    bootstrap_kubeconfig: Path | None,
    node_name: str,
    cert_dir: Path,
    *,
    timeout: float = 900.0,
) -> Credentials:
    """Credentials from --kubeconfig, bootstrapped first when needed."""
    current = usable(kubeconfig)
    if current is not None:
        return current
    if bootstrap_kubeconfig is None:
        raise BootstrapError(
            f"{kubeconfig} has no valid client certificate and no --bootstrap-kubeconfig is set"
        )
    try:
        boot = load(bootstrap_kubeconfig)
        token = jointoken.parse(boot.token)
    except (ConfigError, ValueError) as exc:
        raise BootstrapError(f"bootstrap kubeconfig {bootstrap_kubeconfig}: {exc}") from None
    if not boot.ca_pem:
        raise BootstrapError(f"bootstrap kubeconfig {bootstrap_kubeconfig} names no certificate authority")
    server = await jointoken.cluster_server(boot.server, boot.ca_pem)
    log.info("requesting a client certificate", node=node_name, bootstrap_server=boot.server, server=server)
    await jointoken.request_node_credentials(
        boot.server,
        boot.ca_pem,
        token,
        node_name,
        cert_dir,
        kubeconfig_path=kubeconfig,
        kubeconfig_server=server,
        timeout=timeout,
    )
    return load(kubeconfig)
