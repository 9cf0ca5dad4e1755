"""A TLS apiserver with client certificates, a bearer-token listener, RBAC and the Node
authoriser, plus clients for every identity `pinnace bootstrap` writes."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.apiserver.auth.bootstrap_files import BootstrapPlan, bootstrap
from services.apiserver.server import APIServer, Config
from services.client.client import Client
from services.client.config import Credentials, load
from services.machinery import jwt, pki
from services.machinery.kinds import REGISTRY
from tests.unit.controllers.fakes import until


@dataclass
class Cluster:
    server: APIServer
    directory: Path

    def credentials(self, name: str) -> Credentials:
        return load(self.directory / f"{name}.conf")

    def client(self, name: str) -> Client:
        return self.credentials(name).client(timeout=10)

    def as_user(self, user: str, groups: tuple[str, ...] = (), ca: pki.KeyPair | None = None) -> Client:
        authority = ca or pki.KeyPair.read(self.directory / "pki", "ca")
        pair = pki.issue(authority, user, organizations=groups)
        base = self.credentials("admin")
        return Credentials(base.server, base.ca_pem, pair.cert_pem, pair.key_pem).client(timeout=10)

    def with_token(self, token: str) -> Client:
        base = self.credentials("admin")
        return Credentials(f"127.0.0.1:{self.server.token_port}", base.ca_pem, token=token).client(timeout=10)

    def sign(self, claims: jwt.ServiceAccountClaims, **kwargs: float) -> str:
        key = jwt.load_private_key((self.directory / "pki" / "sa.key").read_bytes())
        return jwt.sign(key, claims, **kwargs)

    async def until_cached(self, plural: str, namespace: str, name: str, *, present: bool = True) -> None:
        """Wait (at most 10 s) until the apiserver's watch cache holds the object, or no longer
        holds it. Token checks and the Node authoriser read that cache, as Kubernetes' do, so a
        test waits for it instead of sleeping a guessed time."""
        info = REGISTRY.by_name(plural)
        cache = self.server.registry.caches[info.plural]
        key = self.server.registry.key(info, namespace, name)
        await until(lambda: (key in cache.objects) == present, interval=0.01)


async def start_cluster(tmp_path: Path, admission_plugins: list[str] | None = None) -> Cluster:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bootstrap(BootstrapPlan(tmp_path, f"127.0.0.1:{port}", nodes=["node-a", "node-b"]))
    (tmp_path / "tokens.csv").write_text('s3cret-token,carol,1001,"team-c"\n')
    pki_dir = tmp_path / "pki"
    config = Config(
        listen=f"127.0.0.1:{port}",
        token_listen="127.0.0.1:0",
        sqlite_path=str(tmp_path / "state.db"),
        sqlite_synchronous="NORMAL",
        insecure=False,
        tls_cert_file=str(pki_dir / "apiserver.crt"),
        tls_key_file=str(pki_dir / "apiserver.key"),
        client_ca_file=str(pki_dir / "ca.crt"),
        token_auth_file=str(tmp_path / "tokens.csv"),
        service_account_key_file=str(pki_dir / "sa.key"),
        service_account_signing_key_file=str(pki_dir / "sa.key"),
        authorization_modes=["Node", "RBAC"],
    )
    if admission_plugins is not None:
        config.admission_plugins = admission_plugins
    server = APIServer(config)
    await server.start()
    return Cluster(server, tmp_path)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    running = await start_cluster(tmp_path)
    yield running
    await running.server.stop(grace=0)
