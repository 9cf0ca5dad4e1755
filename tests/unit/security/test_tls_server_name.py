"""kubeconfig's cluster.tls-server-name: one client configuration naming several apiservers
(server: ipv4:HOST:PORT,HOST:PORT) checks every server's certificate against that one name, so
a client keeps working when the first address is dead (docs/operations.md, multi-master)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from services.client import errors
from services.client.config import ConfigError, load
from tests.unit.security.conftest import Cluster


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_cluster_fields(cluster: Cluster, target: Path, **fields: object) -> Path:
    document = yaml.safe_load((cluster.directory / "admin.conf").read_text())
    document["clusters"][0]["cluster"].update(fields)
    target.write_text(yaml.safe_dump(document))
    return target


async def test_several_addresses_with_a_shared_name_reach_the_live_server(
    cluster: Cluster, tmp_path: Path
) -> None:
    live = cluster.credentials("admin").server
    path = with_cluster_fields(
        cluster,
        tmp_path / "both.conf",
        server=f"ipv4:127.0.0.1:{dead_port()},{live}",
        **{"tls-server-name": "kubernetes.default.svc"},
    )
    credentials = load(path)
    assert credentials.tls_server_name == "kubernetes.default.svc"
    async with credentials.client(timeout=10) as client:
        assert await client.get("namespaces", "default")
    # Without the name, gRPC checks the certificate against the multi-address target: refused.
    bare = with_cluster_fields(cluster, tmp_path / "bare.conf", server=f"ipv4:127.0.0.1:{dead_port()},{live}")
    async with load(bare).client(timeout=5) as client:
        with pytest.raises(errors.APIStatusError):
            await client.get("namespaces", "default")


async def test_a_name_the_certificate_does_not_carry_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    path = with_cluster_fields(
        cluster,
        tmp_path / "wrong.conf",
        **{"tls-server-name": "not-the-apiserver.example"},
    )
    async with load(path).client(timeout=5) as client:
        with pytest.raises(errors.APIStatusError):
            await client.get("namespaces", "default")


def test_tls_server_name_must_be_a_string(cluster: Cluster, tmp_path: Path) -> None:
    path = with_cluster_fields(cluster, tmp_path / "bad.conf", **{"tls-server-name": ["a", "b"]})
    with pytest.raises(ConfigError, match="tls-server-name must be a string"):
        load(path)


def test_without_it_the_address_is_checked(cluster: Cluster) -> None:
    assert load(cluster.directory / "admin.conf").tls_server_name == ""
