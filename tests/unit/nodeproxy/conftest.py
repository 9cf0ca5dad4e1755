"""A TLS apiserver (x509 authentication, Node and RBAC authorisers, the kubelet-client pair from
`pinnace bootstrap`) and an in-process double of a kubelet's Node API that serves TLS with the
kubelet's own credentials and caller check, records what reaches it, and answers scripted
output. The Node "n1" points at the double (InternalIP 127.0.0.1 and its port)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509

from pinnace.api.core.v1 import core_pb2
from pinnace.kubelet.v1 import kubelet_pb2 as kpb
from pinnace.kubelet.v1 import kubelet_pb2_grpc as kpb_grpc
from services.apiserver.auth.bootstrap_files import BootstrapPlan, bootstrap
from services.apiserver.server import APIServer, Config
from services.client.client import Client
from services.client.config import Credentials, load
from services.kubelet.config import KubeletConfig
from services.kubelet.node_api_auth import CallerCheck, server_credentials
from services.machinery import pki
from tests.unit.apiserver.helpers import pod


class KubeletDouble(kpb_grpc.NodeAPIServicer):
    """Scripted Node API: logs are two lines (then, with follow, nothing until cancelled); exec
    and attach echo stdin upper-cased and exit 7; port-forward echoes upper-cased and answers
    the half-close with b"<eof>"; stats name node n1 (250m, 512Mi) and pod p (containers c: 5m, 20Mi and side: 2.5m, 4Mi)."""

    def __init__(self) -> None:
        self.callers = CallerCheck()
        self.calls: list[tuple[str, str]] = []  # (method, caller CN)
        self.log_requests: list[kpb.ContainerLogsRequest] = []
        self.inputs: list[Any] = []
        self.follow_cancelled = asyncio.Event()
        self.fail: tuple[grpc.StatusCode, str] | None = None

    async def _enter(self, context: Any, method: str, verb: str, subresource: str) -> None:
        refusal = self.callers.refusal(context, verb, subresource)
        if refusal is not None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
        pem = context.auth_context()["x509_pem_cert"][0]
        self.calls.append((method, pki.identity_of(x509.load_pem_x509_certificate(pem))[0]))
        if self.fail is not None:
            await context.abort(*self.fail)

    async def ContainerLogs(  # noqa: N802
        self, request: kpb.ContainerLogsRequest, context: Any
    ) -> AsyncIterator[kpb.LogChunk]:
        await self._enter(context, "ContainerLogs", "get", "proxy")
        self.log_requests.append(request)
        yield kpb.LogChunk(data=b"line1\n")
        yield kpb.LogChunk(data=b"line2\n")
        if request.follow:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.follow_cancelled.set()
                raise

    async def _command(self, method: str, requests: Any, context: Any) -> AsyncIterator[kpb.ExecOutput]:
        await self._enter(context, method, "create", "proxy")
        async for message in requests:
            self.inputs.append(message)
            if message.HasField("stdin"):
                yield kpb.ExecOutput(stdout=message.stdin.upper())
            if message.HasField("stdin_eof") or message.stdin.endswith(b"\x04"):
                break  # EOF, or ^D as a shell on a terminal takes it
        yield kpb.ExecOutput(stderr=b"done\n")
        yield kpb.ExecOutput(exit_code=7)

    async def Exec(  # noqa: N802
        self, request_iterator: Any, context: Any
    ) -> AsyncIterator[kpb.ExecOutput]:
        async for output in self._command("Exec", request_iterator, context):
            yield output

    async def Attach(  # noqa: N802
        self, request_iterator: Any, context: Any
    ) -> AsyncIterator[kpb.ExecOutput]:
        async for output in self._command("Attach", request_iterator, context):
            yield output

    async def PortForward(  # noqa: N802
        self, request_iterator: Any, context: Any
    ) -> AsyncIterator[kpb.PortForwardOutput]:
        await self._enter(context, "PortForward", "create", "proxy")
        async for message in request_iterator:
            self.inputs.append(message)
            if message.data:
                yield kpb.PortForwardOutput(data=message.data.upper())
        yield kpb.PortForwardOutput(data=b"<eof>")

    async def StatsSummary(  # noqa: N802
        self, request: kpb.StatsSummaryRequest, context: Any
    ) -> kpb.Summary:
        await self._enter(context, "StatsSummary", "get", "stats")
        summary = kpb.Summary(node=kpb.NodeStats(node_name="n1"))
        summary.node.cpu.usage_nano_cores = 250_000_000
        summary.node.memory.working_set_bytes = 512 * 1024 * 1024
        entry = summary.pods.add(pod_ref=kpb.PodRef(namespace="default", name="p"))
        entry.cpu.usage_nano_cores = 5_000_000
        for name, nanocores, memory in (
            ("c", 5_000_000, 20 * 1024 * 1024),
            ("side", 2_500_000, 4 * 1024 * 1024),
        ):
            container = entry.containers.add(name=name)
            container.cpu.usage_nano_cores = nanocores
            container.memory.working_set_bytes = memory
        return summary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ProxyCluster:
    directory: Path
    server: APIServer
    kubelet: KubeletDouble
    kubelet_port: int
    kubelet_cert: bytes
    clients: list[Client] = field(default_factory=list)

    def client(self, name: str = "admin") -> Client:
        client = load(self.directory / f"{name}.conf").client(timeout=10)
        self.clients.append(client)
        return client

    def as_user(self, user: str, groups: tuple[str, ...] = ()) -> Client:
        pair = pki.issue(pki.KeyPair.read(self.directory / "pki", "ca"), user, organizations=groups)
        base = load(self.directory / "admin.conf")
        client = Credentials(base.server, base.ca_pem, pair.cert_pem, pair.key_pem).client(timeout=10)
        self.clients.append(client)
        return client


def kubelet_config(directory: Path) -> KubeletConfig:
    """The double's kubelet flags: a self-signed serving pair in <directory>/kubelet/pki."""
    return KubeletConfig(
        node_name="n1",
        root_dir=directory / "kubelet",
        node_ip="127.0.0.1",
        client_ca_file=str(directory / "pki" / "ca.crt"),
    )


async def start_kubelet_double(directory: Path) -> tuple[grpc.aio.Server, KubeletDouble, int, bytes]:
    credentials = server_credentials(kubelet_config(directory))
    assert credentials is not None
    double = KubeletDouble()
    server = grpc.aio.server()
    kpb_grpc.add_NodeAPIServicer_to_server(double, server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, double, port, (directory / "kubelet" / "pki" / "kubelet.crt").read_bytes()


async def start_proxy_cluster(directory: Path, **kubelet_flags: Any) -> tuple[ProxyCluster, grpc.aio.Server]:
    port = free_port()
    bootstrap(BootstrapPlan(directory, f"127.0.0.1:{port}", nodes=["n1"]))
    kubelet_server, double, kubelet_port, kubelet_cert = await start_kubelet_double(directory)
    pki_dir = directory / "pki"
    flags: dict[str, Any] = {
        "kubelet_client_certificate": str(pki_dir / "apiserver-kubelet-client.crt"),
        "kubelet_client_key": str(pki_dir / "apiserver-kubelet-client.key"),
        **kubelet_flags,
    }
    config = Config(
        listen=f"127.0.0.1:{port}",
        sqlite_path=str(directory / "state.db"),
        sqlite_synchronous="NORMAL",
        insecure=False,
        tls_cert_file=str(pki_dir / "apiserver.crt"),
        tls_key_file=str(pki_dir / "apiserver.key"),
        client_ca_file=str(pki_dir / "ca.crt"),
        authorization_modes=["Node", "RBAC"],
        **flags,
    )
    server = APIServer(config)
    await server.start()
    cluster = ProxyCluster(directory, server, double, kubelet_port, kubelet_cert)
    admin = cluster.client("admin")
    await admin.create(node("n1", kubelet_port))
    current = await admin.get("nodes", "n1")
    current.status.CopyFrom(node("n1", kubelet_port).status)
    await admin.update_status(current)
    return cluster, kubelet_server


def node(name: str, port: int, address: str = "127.0.0.1") -> core_pb2.Node:
    """A Node whose only address is `address` (none when empty: never a Hostname, which a
    test must not resolve)."""
    obj = core_pb2.Node()
    obj.metadata.name = name
    if address:
        obj.status.addresses.add(type="InternalIP", address=address)
    obj.status.daemon_endpoints.kubelet_endpoint.port = port
    return obj


async def running_pod(
    admin: Client,
    name: str = "p",
    node_name: str = "n1",
    *containers: str,
    labels: dict[str, str] | None = None,
    cpu_request: str = "",
) -> core_pb2.Pod:
    """A pod bound to node_name whose containers (default: one named c) are running."""
    obj = pod(name, node=node_name, labels=labels)
    if containers:
        del obj.spec.containers[:]
        for container in containers:
            obj.spec.containers.add(name=container, image="pinnace/busybox:1.0")
    if cpu_request:
        for container in obj.spec.containers:
            container.resources.requests["cpu"] = cpu_request
    created = await admin.create(obj)
    for container in created.spec.containers:
        status = created.status.container_statuses.add(name=container.name, container_id="docker://abc")
        status.state.running.SetInParent()
    created.status.phase = "Running"
    return await admin.update_status(created)


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[ProxyCluster]:
    cluster, kubelet_server = await start_proxy_cluster(tmp_path)
    try:
        yield cluster
    finally:
        for client in cluster.clients:
            await client.close()
        await cluster.server.stop(grace=0)
        await kubelet_server.stop(0)
