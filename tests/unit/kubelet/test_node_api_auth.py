"""The Node API's TLS and caller check: the real NodeAPI server with client certificates; only
the apiserver's kubelet-client identity and system:masters are served, refusals run nothing."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509

from pinnace.kubelet.v1 import kubelet_pb2 as kpb
from pinnace.kubelet.v1 import kubelet_pb2_grpc as kpb_grpc
from pinnace_cmd import kubelet as kubelet_cmd
from services.kubelet.config import KubeletConfig
from services.kubelet.node_api import NodeAPI, serve
from services.kubelet.node_api_auth import CallerCheck, NodeAPIConfigError, server_credentials, serving_pair
from services.machinery import pki


class Recorder:
    """Stands in for the stats provider and the pod lookup: records that they were reached."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def summary(self) -> kpb.Summary:
        self.calls.append("summary")
        return kpb.Summary(node=kpb.NodeStats(node_name="n1"))

    def find_pod(self, namespace: str, name: str) -> None:
        self.calls.append(f"find_pod {namespace}/{name}")


def _config(tmp_path: Path, **fields: Any) -> KubeletConfig:
    return KubeletConfig(node_name="n1", root_dir=tmp_path / "kubelet", node_ip="127.0.0.1", **fields)


@pytest.fixture
async def node_api(tmp_path: Path) -> AsyncIterator[tuple[pki.KeyPair, Recorder, int, bytes]]:
    ca = pki.new_ca()
    ca.write(tmp_path, "ca")
    config = _config(tmp_path, client_ca_file=str(tmp_path / "ca.crt"), node_api_listen="127.0.0.1:0")
    recorder = Recorder()
    api = NodeAPI(None, None, recorder.find_pod, recorder, CallerCheck())  # type: ignore[arg-type]
    server, port = await serve("127.0.0.1:0", api, server_credentials(config))
    yield ca, recorder, port, serving_pair(config).cert_pem
    await server.stop(0)


def _stub(port: int, trusted: bytes, client: pki.KeyPair | None) -> tuple[grpc.aio.Channel, Any]:
    credentials = grpc.ssl_channel_credentials(
        trusted, client.key_pem if client else None, client.cert_pem if client else None
    )
    channel = grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials)
    return channel, kpb_grpc.NodeAPIStub(channel)


async def test_apiserver_identity_and_masters_are_served(node_api: Any) -> None:
    ca, recorder, port, serving = node_api
    for user, groups in (("kube-apiserver-kubelet-client", ()), ("admin", ("system:masters",))):
        channel, stub = _stub(port, serving, pki.issue(ca, user, organizations=groups))
        async with channel:
            summary = await stub.StatsSummary(kpb.StatsSummaryRequest(), timeout=10)
        assert summary.node.node_name == "n1"
    assert recorder.calls == ["summary", "summary"]


async def test_other_identities_are_refused_before_anything_runs(node_api: Any) -> None:
    ca, recorder, port, serving = node_api
    channel, stub = _stub(port, serving, pki.issue(ca, "system:node:n1", organizations=("system:nodes",)))
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.StatsSummary(kpb.StatsSummaryRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert caught.value.details() == (
            "Forbidden (user=system:node:n1, verb=get, resource=nodes, subresource=stats)"
        )
        request = kpb.ContainerLogsRequest(pod=kpb.PodRef(namespace="default", name="p"))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [c async for c in stub.ContainerLogs(request, timeout=10)]
        assert caught.value.details() == (
            "Forbidden (user=system:node:n1, verb=get, resource=nodes, subresource=proxy)"
        )

        async def start() -> AsyncIterator[kpb.ExecInput]:
            yield kpb.ExecInput(start=kpb.ExecStart(pod=request.pod, command=["true"]))

        with pytest.raises(grpc.aio.AioRpcError, match="verb=create, resource=nodes, subresource=proxy"):
            [o async for o in stub.Exec(start(), timeout=10)]
    assert recorder.calls == []


async def test_certificates_the_client_ca_did_not_sign_cannot_connect(node_api: Any) -> None:
    _, recorder, port, serving = node_api
    stranger = pki.issue(pki.new_ca(), "kube-apiserver-kubelet-client", organizations=("system:masters",))
    for client in (stranger, None):
        channel, stub = _stub(port, serving, client)
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.StatsSummary(kpb.StatsSummaryRequest(), timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert recorder.calls == []


def test_self_signed_serving_pair_is_created_once_with_the_node_names(tmp_path: Path) -> None:
    config = _config(tmp_path, node_api_listen="10.0.0.7:10250")
    first = serving_pair(config)
    assert serving_pair(config) == first  # kept across restarts
    cert = first.certificate
    assert cert.issuer == cert.subject
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"n1", "localhost"} <= set(alt.get_values_for_type(x509.DNSName))
    ips = set(alt.get_values_for_type(x509.IPAddress))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.0.0.7")} <= ips
    assert (tmp_path / "kubelet" / "pki" / "kubelet.key").stat().st_mode & 0o777 == 0o600


def test_given_serving_pair_is_used(tmp_path: Path) -> None:
    pair = pki.issue(pki.new_ca(), "n1", server=True)
    pair.write(tmp_path, "serving")
    config = _config(
        tmp_path,
        tls_cert_file=str(tmp_path / "serving.crt"),
        tls_private_key_file=str(tmp_path / "serving.key"),
    )
    assert serving_pair(config) == pair
    assert not (tmp_path / "kubelet" / "pki").exists()


def test_unusable_security_flags_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NodeAPIConfigError, match="needs --client-ca-file"):
        server_credentials(_config(tmp_path))
    with pytest.raises(NodeAPIConfigError, match="cannot read --client-ca-file"):
        server_credentials(_config(tmp_path, client_ca_file=str(tmp_path / "missing.crt")))
    with pytest.raises(NodeAPIConfigError, match="go together"):
        serving_pair(_config(tmp_path, tls_cert_file=str(tmp_path / "a.crt")))
    assert server_credentials(_config(tmp_path, node_api_insecure=True)) is None
    assert not (tmp_path / "kubelet").exists()


def test_the_program_refuses_to_start_without_a_client_ca(tmp_path: Path, capsys: Any) -> None:
    argv = ["--node-name", "n1", "--root-dir", str(tmp_path), "--node-api-listen", "127.0.0.1:0"]
    assert kubelet_cmd.main(argv) == 2
    assert "the Node API needs --client-ca-file" in capsys.readouterr().err
