"""The apiserver's NodeProxy service against a kubelet double over real TLS: messages relayed
unchanged both ways, Kubernetes' checks and messages, and authorisation before anything."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from pinnace.api.rbac.v1 import rbac_pb2
from services.apiserver.auth.bootstrap_files import BootstrapPlan, bootstrap
from services.client import errors
from services.client.client import Client
from services.kubelet.node_api_auth import serving_pair
from services.machinery import pki
from tests.unit.apiserver.helpers import pod
from tests.unit.nodeproxy.conftest import (
    ProxyCluster,
    free_port,
    kubelet_config,
    node,
    running_pod,
    start_proxy_cluster,
)

KUBELET_CLIENT = "kube-apiserver-kubelet-client"


async def _logs(client: Client, name: str = "p", **options: object) -> bytes:
    return b"".join([chunk async for chunk in client.node_proxy.pod_logs(name, **options)])  # type: ignore[arg-type]


async def test_logs_are_relayed_with_the_request_options(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    assert (
        await _logs(admin, tail_lines=5, timestamps=True, since_seconds=60, limit_bytes=100)
        == b"line1\nline2\n"
    )
    (request,) = proxy.kubelet.log_requests
    assert (request.pod.namespace, request.pod.name, request.container) == ("default", "p", "c")
    assert request.tail_lines == 5 and request.timestamps and request.since_seconds == 60
    assert request.limit_bytes == 100 and not request.previous and not request.follow
    assert proxy.kubelet.calls == [("ContainerLogs", KUBELET_CLIENT)]


async def test_follow_streams_until_the_caller_stops(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    stream = admin.node_proxy.pod_logs("p", follow=True)
    assert await anext(stream) == b"line1\n"
    assert await anext(stream) == b"line2\n"
    await stream.aclose()
    await asyncio.wait_for(proxy.kubelet.follow_cancelled.wait(), 10)


async def test_exec_relays_stdin_resize_eof_and_the_exit_code(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    session = await admin.node_proxy.exec("p", ["sh"], stdin=True, tty=False)
    await session.write(b"hello")
    await session.resize(80, 24)
    await session.close_stdin()
    out, err, code = await session.wait()
    assert (out, err, code) == (b"HELLO", b"done\n", 7)
    kinds = [m.WhichOneof("input") for m in proxy.kubelet.inputs]
    assert kinds == ["start", "stdin", "resize", "stdin_eof"]
    start = proxy.kubelet.inputs[0].start
    assert list(start.command) == ["sh"] and start.container == "c" and start.stdin
    assert proxy.kubelet.inputs[2].resize.width == 80


async def test_exec_without_stdin_half_closes_at_once(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    session = await admin.node_proxy.exec("p", ["true"])
    assert await session.wait() == (b"", b"done\n", 7)
    assert [m.WhichOneof("input") for m in proxy.kubelet.inputs] == ["start"]


async def test_attach_goes_to_the_attach_method(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    session = await admin.node_proxy.attach("p", stdin=True)
    await session.write(b"x")
    await session.close_stdin()
    assert await session.wait() == (b"X", b"done\n", 7)
    assert proxy.kubelet.calls == [("Attach", KUBELET_CLIENT)]


async def test_port_forward_relays_bytes_and_half_close(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    stream = await admin.node_proxy.port_forward_stream("p", 8080)
    await stream.send(b"abc")
    await stream.close_write()
    assert b"".join([d async for d in stream.received()]) == b"ABC<eof>"
    assert proxy.kubelet.inputs[0].start.port == 8080


async def test_port_forward_listener_relays_each_connection(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    seen: list[int] = []
    forwarder = await admin.node_proxy.port_forward("p", [(0, 80)], on_connection=seen.append)
    try:
        ((local, remote),) = forwarder.ports
        assert remote == 80 and local > 0
        for word in (b"one", b"two"):
            reader, writer = await asyncio.open_connection("127.0.0.1", local)
            writer.write(word)
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 10) == word.upper() + b"<eof>"
            writer.close()
        assert seen == [local, local]
    finally:
        await forwarder.close()


async def test_node_stats(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    summary = await admin.node_proxy.node_stats("n1")
    assert summary.node.node_name == "n1" and summary.pods[0].pod_ref.name == "p"
    assert proxy.kubelet.calls == [("StatsSummary", KUBELET_CLIENT)]


# ---------------------------------------------------------------- Kubernetes' checks and messages


async def test_pod_and_node_errors(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    with pytest.raises(errors.NotFoundError, match='pods "ghost" not found'):
        await _logs(admin, "ghost")
    await admin.create(pod("pending"))
    assert await _logs(admin, "pending") == b""  # unscheduled: an empty log, as Kubernetes
    with pytest.raises(errors.BadRequestError, match="pod pending does not have a host assigned"):
        await (await admin.node_proxy.exec("pending", ["true"])).wait()
    with pytest.raises(errors.BadRequestError, match="pod pending does not have a host assigned"):
        stream = await admin.node_proxy.port_forward_stream("pending", 80)
        [d async for d in stream.received()]
    await running_pod(admin, "lost", "nowhere")
    with pytest.raises(errors.NotFoundError, match='nodes "nowhere" not found'):
        await _logs(admin, "lost")
    await admin.create(node("bare", 1, address=""))
    await running_pod(admin, "unreachable", "bare")
    with pytest.raises(errors.APIStatusError, match="no preferred addresses found; known addresses"):
        await _logs(admin, "unreachable")
    with pytest.raises(errors.NotFoundError, match='nodes "nobody" not found'):
        await admin.node_proxy.node_stats("nobody")
    assert proxy.kubelet.calls == []


async def test_container_checks(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin, "two", "n1", "web", "sidecar")
    with pytest.raises(
        errors.BadRequestError,
        match=r"a container name must be specified for pod two, choose one of: \[web sidecar\]",
    ):
        await _logs(admin, "two")
    with pytest.raises(errors.BadRequestError, match="container nope is not valid for pod two"):
        await _logs(admin, "two", container="nope")
    with pytest.raises(errors.BadRequestError, match="container nope is not valid for pod two"):
        await (await admin.node_proxy.exec("two", ["true"], container="nope")).wait()
    with pytest.raises(errors.BadRequestError, match="you must specify at least one command"):
        await (await admin.node_proxy.exec("two", [], container="web")).wait()
    with pytest.raises(
        errors.BadRequestError, match='previous terminated container "web" in pod "two" not found'
    ):
        await _logs(admin, "two", container="web", previous=True)
    await admin.create(pod("creating", node="n1"))
    with pytest.raises(
        errors.BadRequestError, match='container "c" in pod "creating" is waiting to start: ContainerCreating'
    ):
        await _logs(admin, "creating")
    pulling = await admin.get("pods", "creating", "default")
    pulling.status.container_statuses.add(name="c").state.waiting.reason = "ImagePullBackOff"
    await admin.update_status(pulling)
    with pytest.raises(errors.BadRequestError, match="is waiting to start: trying and failing to pull image"):
        await _logs(admin, "creating")
    with pytest.raises(errors.BadRequestError, match="invalid port 70000"):
        stream = await admin.node_proxy.port_forward_stream("two", 70000)
        [d async for d in stream.received()]
    assert proxy.kubelet.calls == []


async def test_kubelet_errors_pass_through(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    proxy.kubelet.fail = (grpc.StatusCode.FAILED_PRECONDITION, "container c is not running")
    with pytest.raises(errors.BadRequestError, match="container c is not running"):
        await (await admin.node_proxy.exec("p", ["true"])).wait()
    proxy.kubelet.fail = (grpc.StatusCode.NOT_FOUND, 'container "c" in pod "p" not found')
    with pytest.raises(errors.NotFoundError, match='container "c" in pod "p" not found'):
        await _logs(admin)


async def test_unreachable_kubelet_is_service_unavailable(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await admin.create(node("down", free_port()))
    with pytest.raises(errors.UnavailableError, match=r"error dialing backend: 127\.0\.0\.1:"):
        await admin.node_proxy.node_stats("down")


# ---------------------------------------------------------------- authorisation


async def _bind(admin: Client, name: str, role: str, kind: str, user: str, namespace: str = "") -> None:
    binding = rbac_pb2.RoleBinding() if namespace else rbac_pb2.ClusterRoleBinding()
    binding.metadata.name = name
    if namespace:
        binding.metadata.namespace = namespace
    binding.role_ref.api_group, binding.role_ref.kind, binding.role_ref.name = (
        "rbac.authorization.k8s.io",
        kind,
        role,
    )
    binding.subjects.add(kind="User", name=user, api_group="rbac.authorization.k8s.io")
    await admin.create(binding)


async def test_subresources_are_authorised_before_anything(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    await _bind(admin, "viewer", "view", "ClusterRole", "vera", namespace="default")
    vera = proxy.as_user("vera")
    assert await _logs(vera) == b"line1\nline2\n"  # view grants get pods/log
    proxy.kubelet.calls.clear()
    refusal = 'pods "p" is forbidden: User "vera" cannot create resource "pods/exec" in API group "" in the namespace "default"'
    with pytest.raises(errors.ForbiddenError, match=refusal):
        await (await vera.node_proxy.exec("p", ["true"])).wait()
    with pytest.raises(errors.ForbiddenError, match='cannot create resource "pods/attach"'):
        await (await vera.node_proxy.attach("p")).wait()
    with pytest.raises(errors.ForbiddenError, match='cannot create resource "pods/portforward"'):
        stream = await vera.node_proxy.port_forward_stream("p", 80)
        [d async for d in stream.received()]
    with pytest.raises(errors.ForbiddenError, match='User "vera" cannot get resource "nodes/stats"'):
        await vera.node_proxy.node_stats("n1")
    stranger = proxy.as_user("stranger")
    with pytest.raises(errors.ForbiddenError, match='cannot get resource "pods/log"'):
        await _logs(stranger, "ghost")  # refused before the pod is looked up: no NotFound leak
    assert proxy.kubelet.calls == [] and proxy.kubelet.inputs == []


async def test_edit_may_exec_and_kubelet_api_admin_may_read_stats(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    await _bind(admin, "editor", "edit", "ClusterRole", "eddie", namespace="default")
    eddie = proxy.as_user("eddie")
    assert (await (await eddie.node_proxy.exec("p", ["true"])).wait())[2] == 7
    await _bind(admin, "stats", "system:kubelet-api-admin", "ClusterRole", "monitor")
    monitor = proxy.as_user("monitor")
    assert (await monitor.node_proxy.node_stats("n1")).node.node_name == "n1"


async def test_a_kubelet_identity_cannot_use_the_proxy(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    kubelet = proxy.client("kubelet-n1")
    with pytest.raises(errors.ForbiddenError, match='User "system:node:n1" cannot get resource "pods/log"'):
        await _logs(kubelet)
    with pytest.raises(errors.ForbiddenError, match='cannot get resource "nodes/stats"'):
        await kubelet.node_proxy.node_stats("n1")
    assert proxy.kubelet.calls == []


# ---------------------------------------------------------------- the apiserver's kubelet credentials


async def _proxy_with(tmp_path: Path, **flags: object) -> tuple[ProxyCluster, grpc.aio.Server]:
    return await start_proxy_cluster(tmp_path, **flags)


async def _stop(cluster: ProxyCluster, kubelet_server: grpc.aio.Server) -> None:
    for client in cluster.clients:
        await client.close()
    await cluster.server.stop(grace=0)
    await kubelet_server.stop(0)


async def test_kubelet_certificate_from_another_ca_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other-ca.crt").write_bytes(pki.new_ca().cert_pem)
    cluster, kubelet_server = await _proxy_with(
        tmp_path, kubelet_certificate_authority=str(tmp_path / "other-ca.crt")
    )
    try:
        with pytest.raises(errors.UnavailableError, match="error dialing backend"):
            await cluster.client().node_proxy.node_stats("n1")
        assert cluster.kubelet.calls == []
    finally:
        await _stop(cluster, kubelet_server)


async def test_kubelet_certificate_verified_against_the_given_authority(tmp_path: Path) -> None:
    # Trusting the kubelet's own self-signed certificate (created before the kubelet starts).
    pair = serving_pair(kubelet_config(tmp_path))
    (tmp_path / "kubelet.crt").write_bytes(pair.cert_pem)
    cluster, kubelet_server = await _proxy_with(
        tmp_path, kubelet_certificate_authority=str(tmp_path / "kubelet.crt")
    )
    try:
        assert cluster.kubelet_cert == pair.cert_pem
        assert (await cluster.client().node_proxy.node_stats("n1")).node.node_name == "n1"
    finally:
        await _stop(cluster, kubelet_server)


async def test_kubelet_refuses_an_apiserver_with_another_identity(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    ca = pki.new_ca()
    ca.write(tmp_path / "pki", "ca")
    pki.issue(ca, "system:node:n1", organizations=("system:nodes",)).write(tmp_path, "wrong")
    cluster, kubelet_server = await _proxy_with(
        tmp_path,
        kubelet_client_certificate=str(tmp_path / "wrong.crt"),
        kubelet_client_key=str(tmp_path / "wrong.key"),
    )
    try:
        admin = cluster.client()
        await running_pod(admin)
        message = r"Forbidden \(user=system:node:n1, verb=get, resource=nodes, subresource=proxy\)"
        with pytest.raises(errors.ForbiddenError, match=message):
            await _logs(admin)
        with pytest.raises(errors.ForbiddenError, match="subresource=stats"):
            await admin.node_proxy.node_stats("n1")
        assert cluster.kubelet.calls == []
    finally:
        await _stop(cluster, kubelet_server)


def test_bootstrap_issues_the_apiserver_kubelet_client_pair(tmp_path: Path) -> None:
    bootstrap(BootstrapPlan(tmp_path, "127.0.0.1:6443"))
    pair = pki.KeyPair.read(tmp_path / "pki", "apiserver-kubelet-client")
    assert pki.identity_of(pair.certificate) == (KUBELET_CLIENT, ("system:masters",))
    pki.verify_signed_by(pki.KeyPair.read(tmp_path / "pki", "ca").certificate, pair.certificate)
    assert not (tmp_path / "apiserver-kubelet-client.conf").exists()


async def test_writes_after_the_end(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    session = await admin.node_proxy.exec("p", ["cat"], stdin=True)
    await session.close_stdin()
    assert (await session.wait())[2] == 7
    await session.write(b"late")  # the command has ended: dropped, as a closed pipe's reader would
    proxy.kubelet.fail = (grpc.StatusCode.NOT_FOUND, "no such port")
    stream = await admin.node_proxy.port_forward_stream("p", 80)
    with pytest.raises(errors.NotFoundError, match="no such port"):
        [d async for d in stream.received()]
    with pytest.raises(errors.NotFoundError, match="no such port"):
        await stream.send(b"x")  # the call's own status, not gRPC's "RPC already finished"
