"""When the kubelet bootstraps: a missing, unreadable or expired --kubeconfig, and only with a
--bootstrap-kubeconfig that holds a bootstrap token."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from services.client.config import render
from services.kubelet.tls_bootstrap import BootstrapError, ensure_credentials, usable
from services.machinery import pki


def node_kubeconfig(directory: Path, validity: dt.timedelta, not_before: dt.datetime | None = None) -> Path:
    ca = pki.new_ca()
    ca.write(directory, "ca")
    pair = pki.issue(
        ca, "system:node:a", organizations=("system:nodes",), validity=validity, not_before=not_before
    )
    cert, key = pair.write(directory, "kubelet-client")
    path = directory / "kubelet.conf"
    path.write_text(
        render(
            "system:node:a", "127.0.0.1:1", str(directory / "ca.crt"), cert_file=str(cert), key_file=str(key)
        )
    )
    return path


def test_valid_kubeconfig_is_used(tmp_path: Path) -> None:
    credentials = usable(node_kubeconfig(tmp_path, dt.timedelta(days=1)))
    assert credentials is not None and credentials.server == "127.0.0.1:1"


def test_missing_garbled_and_expired_kubeconfigs_are_not(tmp_path: Path) -> None:
    assert usable(tmp_path / "absent.conf") is None
    garbled = tmp_path / "garbled.conf"
    garbled.write_text("clusters: [")
    assert usable(garbled) is None
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    assert usable(node_kubeconfig(tmp_path, dt.timedelta(days=1), not_before=past)) is None


async def test_without_a_bootstrap_kubeconfig_there_is_no_way_in(tmp_path: Path) -> None:
    with pytest.raises(BootstrapError, match="no --bootstrap-kubeconfig"):
        await ensure_credentials(tmp_path / "kubelet.conf", None, "a", tmp_path)
    boot = tmp_path / "bootstrap.conf"
    boot.write_text(
        render("bootstrap", "127.0.0.1:1", str(tmp_path / "ca.crt"), token="not-a-bootstrap-token")
    )
    (tmp_path / "ca.crt").write_bytes(pki.new_ca().cert_pem)
    with pytest.raises(BootstrapError, match="bootstrap token is not of the form"):
        await ensure_credentials(tmp_path / "kubelet.conf", boot, "a", tmp_path)
    assert not (tmp_path / "kubelet.conf").exists()
