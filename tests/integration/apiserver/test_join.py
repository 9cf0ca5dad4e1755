"""A node joins with nothing but a join token, against the real programs: `pinnace bootstrap`,
the apiserver over TLS (mTLS listener, token listener, Node and RBAC authorisers, anonymous
access to cluster-info, bootstrap-token authentication), the controller-manager running
csrapproving, csrsigning and tokencleaner, `pinnace token create`, and the kubelet's
--bootstrap-kubeconfig. The new node's certificate lets it write its own Node, not another's."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from pinnace.api.certificates.v1 import certificates_pb2
from pinnace.api.core.v1 import core_pb2
from services.client import errors, jointoken
from services.client.client import Client
from services.client.config import load, render
from services.machinery import pki
from tests.integration.apiserver.process import ApiserverProcess, free_port

pytestmark = pytest.mark.integration
ENV = {**os.environ, "PINNACE_LOG_FORMAT": "json"}


@dataclass
class Cluster:
    directory: Path
    apiserver: ApiserverProcess

    @property
    def token_address(self) -> str:
        return f"127.0.0.1:{self.apiserver.token_port}"

    @property
    def ca_pem(self) -> bytes:
        return (self.directory / "pki" / "ca.crt").read_bytes()

    def admin(self) -> Client:
        return load(self.directory / "admin.conf").client(timeout=15)


def program(*args: str, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", *args], stdout=handle, stderr=handle, env=ENV)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def programs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop(process)


@pytest.fixture
async def cluster(tmp_path: Path, programs: list[subprocess.Popen[bytes]]) -> AsyncIterator[Cluster]:
    apiserver = ApiserverProcess(
        tmp_path, tls_dir=tmp_path, extra_args=["--anonymous-auth", "--enable-bootstrap-token-auth"]
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pinnace_cmd.bootstrap",
            "--dir",
            str(tmp_path),
            "--server",
            apiserver.address,
        ],
        check=True,
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    try:
        await apiserver.start()
        pki_dir = tmp_path / "pki"
        programs.append(
            program(
                "pinnace_cmd.controller_manager",
                f"--kubeconfig={tmp_path / 'controller-manager.conf'}",
                "--controllers=csrapproving,csrsigning,tokencleaner",
                f"--cluster-signing-cert-file={pki_dir / 'ca.crt'}",
                f"--cluster-signing-key-file={pki_dir / 'ca.key'}",
                "--cluster-signing-duration=2h",
                "--leader-elect=false",
                log=tmp_path / "controller-manager.log",
            )
        )
        yield Cluster(tmp_path, apiserver)
    finally:
        apiserver.stop()


def create_join_token(cluster: Cluster) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pinnace_cmd.main",
            "token",
            "create",
            "--ttl=1h",
            "--print-join-token",
            f"--kubeconfig={cluster.directory / 'admin.conf'}",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    return done.stdout.strip()


async def test_new_node_joins_with_only_a_join_token(cluster: Cluster, tmp_path: Path) -> None:
    join = create_join_token(cluster)
    # --- on the new node: nothing but the token listener's address and the join token.
    pinned, token = jointoken.parse_join_token(join)
    info = await jointoken.fetch_cluster_info(cluster.token_address, pinned)
    kubeconfig = await jointoken.request_node_credentials(
        cluster.token_address,
        info.ca_pem,
        token,
        "joiner",
        tmp_path / "joiner",
        kubeconfig_server=info.server,
        timeout=60,
    )
    credentials = load(kubeconfig)
    assert credentials.server == cluster.apiserver.address
    cert = x509.load_pem_x509_certificate(credentials.cert_pem)
    pki.verify_signed_by(x509.load_pem_x509_certificate(cluster.ca_pem), cert)
    assert pki.identity_of(cert) == ("system:node:joiner", ("system:nodes",))
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime.total_seconds() == 2 * 3600 + 300  # --cluster-signing-duration, backdated 5 minutes

    async with credentials.client(timeout=15) as node_client, cluster.admin() as admin:
        own = core_pb2.Node()
        own.metadata.name = "joiner"
        created = await node_client.create(own)
        created.metadata.labels["joined"] = "yes"
        assert (await node_client.update(created)).metadata.labels["joined"] == "yes"
        other = core_pb2.Node()
        other.metadata.name = "someone-else"
        other = await admin.create(other)
        other.metadata.labels["joined"] = "stolen"
        with pytest.raises(errors.ForbiddenError):
            await node_client.update(other)
        assert "joined" not in (await admin.get("nodes", "someone-else")).metadata.labels
        with pytest.raises(errors.ForbiddenError):
            await node_client.list("secrets", "kube-system")
        requests = (await admin.list("certificatesigningrequests")).items
        assert len(requests) == 1
        csr = requests[0]
        assert isinstance(csr, certificates_pb2.CertificateSigningRequest)
        assert csr.spec.username == f"system:bootstrap:{token.token_id}"
        assert [(c.type, c.reason) for c in csr.status.conditions] == [("Approved", "AutoApproved")]


async def test_join_refuses_a_token_pinning_another_ca(cluster: Cluster) -> None:
    _, token = jointoken.parse_join_token(create_join_token(cluster))
    forged = jointoken.format_join_token(pki.new_ca().cert_pem, token)
    with pytest.raises(jointoken.JoinError, match="refusing to trust it"):
        await jointoken.fetch_cluster_ca(cluster.token_address, jointoken.parse_join_token(forged)[0])
    async with cluster.admin() as admin:
        assert not (await admin.list("certificatesigningrequests")).items


async def test_kubelet_program_bootstraps_its_kubeconfig(
    cluster: Cluster, tmp_path: Path, programs: list[subprocess.Popen[bytes]]
) -> None:
    _, token = jointoken.parse_join_token(create_join_token(cluster))
    boot = tmp_path / "bootstrap-kubelet.conf"
    boot.write_text(
        render("kubelet-bootstrap", cluster.token_address, str(tmp_path / "pki" / "ca.crt"), token=str(token))
    )
    kubeconfig = tmp_path / "node" / "kubelet.conf"
    kubelet = program(
        "pinnace_cmd.kubelet",
        "--node-name=booted",
        f"--bootstrap-kubeconfig={boot}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={tmp_path / 'node' / 'root'}",
        f"--container-runtime-endpoint=unix://{tmp_path / 'no-runtime.sock'}",
        "--node-api-listen=",
        f"--metrics-listen=127.0.0.1:{free_port()}",
        log=tmp_path / "kubelet.log",
    )
    programs.append(kubelet)
    for _ in range(600):
        if kubeconfig.exists():
            break
        assert kubelet.poll() is None, (tmp_path / "kubelet.log").read_text()[-2000:]
        await asyncio.sleep(0.1)
    credentials = load(kubeconfig)
    assert pki.identity_of(x509.load_pem_x509_certificate(credentials.cert_pem))[0] == "system:node:booted"
    assert oct((tmp_path / "node" / "root" / "pki" / "kubelet-client.key").stat().st_mode & 0o777) == "0o600"
