"""Logs, exec, attach, port-forward and stats through the apiserver's NodeProxy to a real
kubelet (the harness: real dockerd, shim, kubelet and apiserver programs). The apiserver dials
the kubelet over TLS with the kubelet-client certificate from `pinnace bootstrap` and verifies
the kubelet's serving certificate; the kubelet requires client certificates from the cluster CA
and refuses every other identity. The node's InternalIP is 127.0.0.1 (the kubelet listens on
loopback), so the apiserver dials nothing but loopback."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from pinnace.api.core.v1 import core_pb2
from pinnace.kubelet.v1 import kubelet_pb2 as kpb
from pinnace.kubelet.v1 import kubelet_pb2_grpc as kpb_grpc
from services.apiserver.auth.bootstrap_files import BootstrapPlan, bootstrap
from services.cli.app import main_async
from services.client import errors
from services.client.client import Client
from services.machinery import pki
from tests.integration.kubelet.harness import REFERENCE_PLUGINS, Node, container, running

pytestmark = pytest.mark.integration

TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"


@pytest.fixture
async def node(docker_client: Any, tmp_path: Path) -> AsyncIterator[Node]:
    if not (REFERENCE_PLUGINS / "bridge").is_file():
        pytest.skip("Debian's containernetworking-plugins are not installed")
    bootstrap(BootstrapPlan(tmp_path, "127.0.0.1:6443"))
    pki_dir = tmp_path / "pki"
    # The kubelet's serving pair, made before it starts (it keeps an existing one), so the
    # apiserver can be told to trust exactly it, as --kubelet-certificate-authority.
    serving = pki.self_signed("proxy-node", dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    serving.write(tmp_path, "kubelet-serving")
    lab = Node(
        docker_client,
        node_ip="127.0.0.1",
        node_api_args=[
            "--client-ca-file", str(pki_dir / "ca.crt"),
            "--tls-cert-file", str(tmp_path / "kubelet-serving.crt"),
            "--tls-private-key-file", str(tmp_path / "kubelet-serving.key"),
        ],
        apiserver_args=[
            "--kubelet-client-certificate", str(pki_dir / "apiserver-kubelet-client.crt"),
            "--kubelet-client-key", str(pki_dir / "apiserver-kubelet-client.key"),
            "--kubelet-certificate-authority", str(tmp_path / "kubelet-serving.crt"),
        ],
    )  # fmt: skip
    try:
        await lab.start()
        yield lab
    finally:
        await lab.destroy()


async def pinctl(node: Node, *argv: str, out: io.StringIO | None = None) -> tuple[int, str, str]:
    out = out if out is not None else io.StringIO()
    err = io.StringIO()
    code = await main_async(
        ["--server", node.apiserver.address, "--insecure-plaintext", *argv], out=out, err=err
    )
    return code, out.getvalue(), err.getvalue()


async def _follow_until(client: Client, name: str, marker: bytes) -> bytes:
    seen = b""
    stream = client.node_proxy.pod_logs(name, follow=True)
    try:
        async for chunk in stream:
            seen += chunk
            if marker in seen:
                return seen
    finally:
        await stream.aclose()
    raise AssertionError(f"the log ended before {marker!r}: {seen!r}")


async def test_logs_exec_port_forward_and_stats_through_the_apiserver(node: Node, tmp_path: Path) -> None:
    client = node.client
    assert client is not None
    await client.create(node.pod("ticker", container("main", "sh", "-c", TICKER)))
    web = container("web", "serve", "8080", env=[core_pb2.EnvVar(name="MESSAGE", value="proxied")])
    web.ports.add(name="http", container_port=8080)
    await client.create(node.pod("web", web))
    await node.wait_pod("ticker", running, timeout=90)
    await node.wait_pod("web", running, timeout=90)

    # logs -f: lines keep arriving after the call started, until we stop reading.
    first = b"".join([c async for c in client.node_proxy.pod_logs("ticker", tail_lines=1)])
    count = int(re.findall(rb"tick (\d+)", first)[-1])
    later = await asyncio.wait_for(_follow_until(client, "ticker", b"tick %d\n" % (count + 5)), 30)
    assert b"tick %d\n" % (count + 3) in later
    code, out, _ = await pinctl(node, "logs", "ticker", "--tail", "2")
    assert code == 0 and re.fullmatch(r"tick \d+\ntick \d+\n", out)

    # exec: stdout, stderr and the exit code; stdin with its EOF.
    session = await client.node_proxy.exec("ticker", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert await session.wait() == (b"out\n", b"err\n", 3)
    session = await client.node_proxy.exec("ticker", ["sh", "-c", "tr a-z A-Z"], stdin=True)
    await session.write(b"hello ")
    await session.write(b"world\n")
    await session.close_stdin()
    assert await session.wait() == (b"HELLO WORLD\n", b"", 0)
    code, out, err = await pinctl(node, "exec", "ticker", "--", "sh", "-c", "echo $((6*7)); exit 5")
    assert (code, out) == (5, "42\n") and "command terminated with exit code 5" in err

    # port-forward to the busybox `serve` pod: HTTP through a local listener.
    forwarder = await client.node_proxy.port_forward("web", [(0, 8080)])
    try:
        ((local, _),) = forwarder.ports
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        writer.write(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    finally:
        await forwarder.close()
    assert answer.startswith(b"HTTP/1.") and answer.rstrip().endswith(b"web proxied")

    # stats through the apiserver, and pinctl top on them.
    summary = await client.node_proxy.node_stats(node.name)
    assert summary.node.node_name == node.name and summary.node.memory.working_set_bytes > 0
    assert {p.pod_ref.name for p in summary.pods} >= {"ticker", "web"}
    code, out, err = await pinctl(node, "top", "node")
    assert code == 0, err
    assert re.match(rf"{node.name}\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%", out.splitlines()[1])
    code, out, err = await pinctl(node, "top", "pod", "--no-headers")
    assert code == 0, err
    assert sorted(line.split()[0] for line in out.splitlines()) == ["ticker", "web"]

    # Kubernetes' errors on the way.
    with pytest.raises(errors.BadRequestError, match="container nope is not valid for pod ticker"):
        await (await client.node_proxy.exec("ticker", ["true"], container="nope")).wait()
    with pytest.raises(errors.BadRequestError, match='previous terminated container "main" in pod "ticker"'):
        [c async for c in client.node_proxy.pod_logs("ticker", previous=True)]


async def test_the_kubelet_serves_only_the_apiserver(node: Node, tmp_path: Path) -> None:
    """Direct callers of the Node API: no certificate, a foreign CA, or a cluster identity that
    is not the apiserver's are all refused; the apiserver's own pair is served."""
    assert node.client is not None
    await node.wait_node(lambda n: n.status.daemon_endpoints.kubelet_endpoint.port == node.node_api_port)
    ca = pki.KeyPair.read(tmp_path / "pki", "ca")
    serving = (tmp_path / "kubelet-serving.crt").read_bytes()
    address = f"127.0.0.1:{node.node_api_port}"

    async def stats(client_pair: pki.KeyPair | None) -> kpb.Summary:
        credentials = grpc.ssl_channel_credentials(
            serving,
            client_pair.key_pem if client_pair else None,
            client_pair.cert_pem if client_pair else None,
        )
        async with grpc.aio.secure_channel(address, credentials) as channel:
            summary: kpb.Summary = await kpb_grpc.NodeAPIStub(channel).StatsSummary(
                kpb.StatsSummaryRequest(), timeout=20
            )
            return summary

    for stranger in (None, pki.issue(pki.new_ca(), "kube-apiserver-kubelet-client")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stats(stranger)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    kubelet_user = pki.issue(ca, f"system:node:{node.name}", organizations=("system:nodes",))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stats(kubelet_user)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == (
        f"Forbidden (user=system:node:{node.name}, verb=get, resource=nodes, subresource=stats)"
    )
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await kpb_grpc.NodeAPIStub(channel).StatsSummary(kpb.StatsSummaryRequest(), timeout=5)
    apiserver_pair = pki.KeyPair.read(tmp_path / "pki", "apiserver-kubelet-client")
    assert (await stats(apiserver_pair)).node.node_name == node.name
