"""`pinnace bootstrap`: everything a cluster's security needs on disk, in one command: the CA,
the apiserver's serving certificate, a client certificate and a client configuration file for
every component and for the admin, a kubelet identity per node, the apiserver's client
certificate towards kubelets, and the service-account key.

Existing files are kept (re-running adds what is missing, e.g. a new node's identity), so the
CA is never replaced by accident.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.client.config import render
from services.machinery import pki

SERVICE_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
)
COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("admin", ("system:masters",)),
    "scheduler": ("system:kube-scheduler", ()),
    "controller-manager": ("system:kube-controller-manager", ()),
    "proxy": ("system:kube-proxy", ()),
}

KUBELET_CLIENT_PAIR = "apiserver-kubelet-client"
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"


@dataclass
class BootstrapPlan:
    directory: Path
    server: str
    apiserver_ips: list[str] = field(default_factory=lambda: ["127.0.0.1", "10.96.0.1"])
    apiserver_names: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)


def _keypair(pki_dir: Path, name: str, make: Callable[[], pki.KeyPair]) -> pki.KeyPair:
    if (pki_dir / f"{name}.crt").exists() and (pki_dir / f"{name}.key").exists():
        return pki.KeyPair.read(pki_dir, name)
    pair = make()
    pair.write(pki_dir, name)
    return pair


def bootstrap(plan: BootstrapPlan) -> list[Path]:
    """Write what is missing; return every client configuration file."""
    pki_dir = plan.directory / "pki"
    ca = _keypair(pki_dir, "ca", pki.new_ca)
    _keypair(
        pki_dir,
        "apiserver",
        lambda: pki.issue(
            ca,
            "pinnace-apiserver",
            dns_names=(*SERVICE_NAMES, *plan.apiserver_names),
            ip_addresses=tuple(plan.apiserver_ips),
            server=True,
            client=False,
        ),
    )
    # The apiserver's identity towards kubelets (--kubelet-client-certificate): the kubelet
    # serves kube-apiserver-kubelet-client and system:masters only (docs/kubelet.md).
    _keypair(
        pki_dir,
        KUBELET_CLIENT_PAIR,
        lambda: pki.issue(ca, KUBELET_CLIENT_USER, organizations=("system:masters",)),
    )
    sa_key = pki_dir / "sa.key"
    if not sa_key.exists():
        sa_key.touch(mode=0o600)
        sa_key.write_bytes(pki.new_signing_key())
    identities = dict(COMPONENTS)
    identities |= {f"kubelet-{node}": (f"system:node:{node}", ("system:nodes",)) for node in plan.nodes}
    configs = []
    for name, (user, groups) in identities.items():
        _keypair(pki_dir, name, functools.partial(pki.issue, ca, user, organizations=groups))
        conf = plan.directory / f"{name}.conf"
        if not conf.exists():
            conf.touch(mode=0o600)
            conf.write_text(
                render(
                    user,
                    plan.server,
                    str(pki_dir / "ca.crt"),
                    cert_file=str(pki_dir / f"{name}.crt"),
                    key_file=str(pki_dir / f"{name}.key"),
                )
            )
        configs.append(conf)
    return configs
