"""The apiserver's storage speaks TLS to an etcd that requires client certificates
(`--etcd-cafile/--etcd-certfile/--etcd-keyfile` with `https://` endpoints): a client with the
right certificate reads and writes; one without a certificate, with a certificate of another
CA, or dialling in plaintext gets an error and writes nothing."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.apiserver.storage.etcd import EtcdStorage, EtcdTLS
from services.apiserver.storage.interface import StorageError
from services.machinery import pki
from tests.integration.etcd_cluster import ETCD_BINARY, free_ports, require_etcd

pytestmark = pytest.mark.integration
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class TLSEtcd:
    endpoint: str  # https://127.0.0.1:PORT
    ca: pki.KeyPair
    client: pki.KeyPair

    def tls(self, client: pki.KeyPair | None = None) -> EtcdTLS:
        chosen = client or self.client
        return EtcdTLS(self.ca.cert_pem, chosen.cert_pem, chosen.key_pem)


@pytest.fixture
def tls_etcd(tmp_path: Path) -> Iterator[TLSEtcd]:
    require_etcd()
    ca = pki.new_ca("etcd-ca")
    serving = pki.issue(ca, "etcd", ip_addresses=("127.0.0.1",), server=True, client=False)
    client = pki.issue(ca, "pinnace-apiserver")
    ca_file, _ = ca.write(tmp_path / "pki", "ca")
    cert_file, key_file = serving.write(tmp_path / "pki", "server")
    client_port, peer_port = free_ports(2)
    peer = f"http://127.0.0.1:{peer_port}"
    command = [
        ETCD_BINARY,
        "--name=tls",
        f"--data-dir={tmp_path / 'data'}",
        f"--listen-client-urls=https://127.0.0.1:{client_port}",
        f"--advertise-client-urls=https://127.0.0.1:{client_port}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=tls={peer}",
        f"--cert-file={cert_file}",
        f"--key-file={key_file}",
        f"--trusted-ca-file={ca_file}",
        "--client-cert-auth",
        "--logger=zap",
        "--log-level=warn",
    ]
    log = (tmp_path / "etcd.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        yield TLSEtcd(f"https://127.0.0.1:{client_port}", ca, client)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture
async def store(tls_etcd: TLSEtcd) -> AsyncIterator[EtcdStorage]:
    backend = EtcdStorage([tls_etcd.endpoint], prefix="/tls", tls=tls_etcd.tls())
    deadline = time.monotonic() + START_TIMEOUT
    while True:  # etcd takes a moment to serve
        try:
            await backend.current_revision()
            break
        except StorageError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    yield backend
    await backend.close()


async def test_a_client_certificate_of_the_ca_reads_and_writes(store: EtcdStorage) -> None:
    created = await store.create("/registry/configmaps/default/a", b"over TLS")
    got = await store.get("/registry/configmaps/default/a")
    assert got is not None and got.value == b"over TLS" and got.mod_revision == created.mod_revision


@pytest.mark.parametrize("how", ["no client certificate", "another CA's certificate", "plaintext"])
async def test_clients_etcd_does_not_trust_write_nothing(
    store: EtcdStorage, tls_etcd: TLSEtcd, how: str
) -> None:
    if how == "no client certificate":
        intruder = EtcdStorage([tls_etcd.endpoint], prefix="/tls", tls=EtcdTLS(tls_etcd.ca.cert_pem))
    elif how == "another CA's certificate":
        stranger = pki.issue(pki.new_ca("other-ca"), "pinnace-apiserver")
        intruder = EtcdStorage([tls_etcd.endpoint], prefix="/tls", tls=tls_etcd.tls(stranger))
    else:
        plain = tls_etcd.endpoint.replace("https://", "http://")
        intruder = EtcdStorage([plain], prefix="/tls")
    intruder.request_timeout = 3.0
    try:
        with pytest.raises(StorageError):
            await intruder.create("/registry/configmaps/default/intruder", b"x")
    finally:
        await intruder.close()
    assert await store.get("/registry/configmaps/default/intruder") is None


def test_a_certificate_without_its_key_is_refused() -> None:
    with pytest.raises(ValueError, match="go together"):
        EtcdTLS.from_files(cert_file="/nonexistent.crt")
