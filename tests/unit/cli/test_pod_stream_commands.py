"""pinctl logs, exec, attach, port-forward and top against a TLS apiserver whose NodeProxy
reaches the kubelet double of tests/unit/nodeproxy (kubeconfig of the bootstrap admin)."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import re
import sys
import termios
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pinnace.api.core.v1 import core_pb2
from pinnace.api.rbac.v1 import rbac_pb2
from services.cli.app import main_async
from services.cli.pod_streams import NO_TTY
from services.client.config import load, render
from services.machinery import pki
from tests.unit.apiserver.helpers import pod
from tests.unit.cli.conftest import Result
from tests.unit.nodeproxy.conftest import ProxyCluster, node, proxy, running_pod

__all__ = ["proxy"]


async def pinctl(cluster: ProxyCluster, *argv: str, out: io.StringIO | None = None) -> Result:
    out = out if out is not None else io.StringIO()
    err = io.StringIO()
    code = await main_async(["--kubeconfig", str(cluster.directory / "admin.conf"), *argv], out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def stdin_text(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Replace stdin with a pipe holding the given bytes (then EOF)."""
    opened: list[Any] = []

    def feed(data: bytes) -> None:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, data)
        os.close(write_fd)
        stream = os.fdopen(read_fd, encoding="utf-8")
        opened.append(stream)
        monkeypatch.setattr(sys, "stdin", stream)

    yield feed
    for stream in opened:
        stream.close()


# ---------------------------------------------------------------- logs


async def test_logs_passes_the_options(proxy: ProxyCluster) -> None:
    await running_pod(proxy.client())
    result = await pinctl(proxy, "logs", "pod/p", "--tail", "5", "--since", "90s", "--timestamps")
    assert (result.code, result.out, result.err) == (0, "line1\nline2\n", "")
    (request,) = proxy.kubelet.log_requests
    assert (request.tail_lines, request.since_seconds, request.timestamps) == (5, 90, True)
    assert not request.HasField("limit_bytes") and request.container == "c"


async def test_logs_defaults_to_the_first_container_and_says_so(proxy: ProxyCluster) -> None:
    await running_pod(proxy.client(), "two", "n1", "web", "sidecar")
    result = await pinctl(proxy, "logs", "two")
    assert result.code == 0 and result.out == "line1\nline2\n"
    assert 'Defaulted container "web" out of: web, sidecar' in result.err
    assert proxy.kubelet.log_requests[0].container == "web"


async def test_logs_errors(proxy: ProxyCluster) -> None:
    result = await pinctl(proxy, "logs", "ghost")
    assert (result.code, result.err.strip()) == (1, 'Error from server (NotFound): pods "ghost" not found')
    result = await pinctl(proxy, "logs", "deployment/web")
    assert result.code == 2 and "only pods are supported here" in result.err
    result = await pinctl(proxy, "logs", "p", "--limit-bytes", "-1")
    assert result.code == 2 and "--limit-bytes must be greater than 0" in result.err
    assert proxy.kubelet.calls == []


# ---------------------------------------------------------------- exec and attach


async def test_exec_returns_the_remote_exit_code(proxy: ProxyCluster) -> None:
    await running_pod(proxy.client())
    result = await pinctl(proxy, "exec", "p", "--", "sh", "-c", "exit 7")
    assert result.code == 7 and result.out == ""
    assert result.err == "done\ncommand terminated with exit code 7\n"
    assert list(proxy.kubelet.inputs[0].start.command) == ["sh", "-c", "exit 7"]


async def test_exec_flags_after_the_pod_and_the_deprecated_form(proxy: ProxyCluster) -> None:
    await running_pod(proxy.client(), "two", "n1", "web", "sidecar")
    result = await pinctl(proxy, "exec", "two", "-c", "sidecar", "--", "ls", "-c", "-l")
    assert result.code == 7 and "Defaulted container" not in result.err
    start = proxy.kubelet.inputs[0].start
    assert start.container == "sidecar" and list(start.command) == ["ls", "-c", "-l"]
    result = await pinctl(proxy, "exec", "two", "-c", "web", "ls")
    assert result.code == 7 and "is DEPRECATED" in result.err
    assert proxy.kubelet.inputs[1].start.container == "web"
    result = await pinctl(proxy, "exec", "two", "stray", "--", "ls")
    assert result.code == 2 and "unexpected arguments before --: stray" in result.err
    result = await pinctl(proxy, "exec", "two", "-c", "--", "ls")
    assert result.code == 2 and "expected one argument" in result.err
    assert len(proxy.kubelet.calls) == 2


async def test_exec_sends_stdin_with_i(proxy: ProxyCluster, stdin_text: Any) -> None:
    await running_pod(proxy.client())
    stdin_text(b"hello\n")
    result = await pinctl(proxy, "exec", "-i", "p", "--", "cat")
    assert result.out == "HELLO\n" and result.code == 7
    kinds = [m.WhichOneof("input") for m in proxy.kubelet.inputs]
    assert kinds == ["start", "stdin", "stdin_eof"] and proxy.kubelet.inputs[0].start.stdin


async def test_exec_tty_needs_a_terminal(proxy: ProxyCluster, stdin_text: Any) -> None:
    await running_pod(proxy.client())
    stdin_text(b"")
    result = await pinctl(proxy, "exec", "-it", "p", "--", "sh")
    assert NO_TTY in result.err and not proxy.kubelet.inputs[0].start.tty


async def test_exec_tty_puts_the_terminal_in_raw_mode(
    proxy: ProxyCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    await running_pod(proxy.client())
    controller, terminal = pty.openpty()
    stdin = os.fdopen(terminal, encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    before = termios.tcgetattr(terminal)
    seen_raw: list[bool] = []

    async def type_keys() -> None:
        # Type only once pinctl has made the terminal raw (at most 10 s): typed earlier, the
        # line discipline would take ^D as end-of-line and the shell would never see it.
        deadline = time.monotonic() + 10
        while termios.tcgetattr(terminal)[3] & termios.ICANON and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        seen_raw.append(not termios.tcgetattr(terminal)[3] & termios.ICANON)
        os.write(controller, b"ls\x04")

    typing = asyncio.create_task(type_keys())
    try:
        result = await asyncio.wait_for(pinctl(proxy, "exec", "-it", "p", "--", "sh"), 20)
        after = termios.tcgetattr(terminal)
    finally:
        await typing
        stdin.close()
        os.close(controller)
    assert result.out == "LS\x04" and result.code == 7
    assert seen_raw == [True]  # raw while the session ran...
    start, resize = proxy.kubelet.inputs[0].start, proxy.kubelet.inputs[1]
    assert start.tty and start.stdin and resize.resize.width > 0
    assert after == before  # ...and restored after


async def test_exec_refusals(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    result = await pinctl(proxy, "exec", "p")
    assert result.code == 2 and "you must specify at least one command for the container" in result.err
    done = await running_pod(admin, "done")
    done.status.phase = "Succeeded"
    await admin.update_status(done)
    result = await pinctl(proxy, "exec", "done", "--", "true")
    assert result.code == 1
    assert "cannot exec into a container in a completed pod; current phase is Succeeded" in result.err
    result = await pinctl(proxy, "attach", "done")
    assert "cannot attach a container in a completed pod; current phase is Succeeded" in result.err
    assert proxy.kubelet.calls == []


async def test_attach_relays_stdin(proxy: ProxyCluster, stdin_text: Any) -> None:
    await running_pod(proxy.client())
    stdin_text(b"abc")
    result = await pinctl(proxy, "attach", "-i", "p")
    assert (result.code, result.out, result.err) == (0, "ABC", "done\n")
    assert proxy.kubelet.calls[0][0] == "Attach"


# ---------------------------------------------------------------- port-forward


async def _forwarding(out: io.StringIO) -> list[tuple[int, int]]:
    for _ in range(200):
        found = re.findall(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", out.getvalue())
        if found:
            return [(int(a), int(b)) for a, b in found]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no Forwarding line in {out.getvalue()!r}")


async def test_port_forward_relays_connections_until_stopped(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    web = pod("web", node="n1")
    web.spec.containers[0].ports.add(name="http", container_port=8080)
    created = await admin.create(web)
    created.status.phase = "Running"
    await admin.update_status(created)
    out = io.StringIO()
    command = asyncio.create_task(pinctl(proxy, "port-forward", "web", ":80", "0:http", out=out))
    try:
        ports = await _forwarding(out)
        assert [remote for _, remote in ports] == [80, 8080]
        local = ports[0][0]
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        writer.write(b"ping")
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 10) == b"PING<eof>"
        writer.close()
        assert f"Handling connection for {local}" in out.getvalue()
        assert proxy.kubelet.inputs[0].start.port == 80
    finally:
        command.cancel()
        with pytest.raises(asyncio.CancelledError):
            await command
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", local)  # the listener is gone


async def test_port_forward_refusals(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await admin.create(pod("pending", node="n1"))
    result = await pinctl(proxy, "port-forward", "pending", "8080")
    assert "unable to forward port because pod is not running. Current status=Pending" in result.err
    await running_pod(admin)
    result = await pinctl(proxy, "port-forward", "p", "8080:http")
    assert result.code == 1 and "Pod 'p' does not have a named port 'http'" in result.err
    result = await pinctl(proxy, "port-forward", "p", "70000")
    assert result.code == 2 and "Error parsing remote port '70000'" in result.err
    assert proxy.kubelet.calls == []


# ---------------------------------------------------------------- top


async def _allocatable(cluster: ProxyCluster, name: str, cpu: str, memory: str) -> None:
    admin = cluster.client()
    current = await admin.get("nodes", name)
    assert isinstance(current, core_pb2.Node)
    current.status.allocatable.update({"cpu": cpu, "memory": memory})
    await admin.update_status(current)


async def test_top_node(proxy: ProxyCluster) -> None:
    await _allocatable(proxy, "n1", "1", "1Gi")
    admin = proxy.client()
    await admin.create(node("zz-down", 1))  # nothing listens on port 1
    result = await pinctl(proxy, "top", "node")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "NAME      CPU(cores)   CPU%        MEMORY(bytes)   MEMORY%",
        "n1        250m         25%         512Mi           50%",
        "zz-down   <unknown>    <unknown>   <unknown>       <unknown>",
    ]


async def test_top_pod(proxy: ProxyCluster) -> None:
    await running_pod(proxy.client())
    result = await pinctl(proxy, "top", "pod")
    assert result.out.splitlines() == ["NAME   CPU(cores)   MEMORY(bytes)", "p      7m           24Mi"]
    result = await pinctl(proxy, "top", "pod", "p", "--containers", "--no-headers")
    assert result.out.splitlines() == ["p     c      5m    20Mi", "p     side   2m    4Mi"]
    result = await pinctl(proxy, "top", "pod", "-A", "--sort-by", "memory")
    assert result.out.splitlines()[0].split() == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    result = await pinctl(proxy, "top", "pod", "-n", "kube-system")
    assert result.code == 0 and result.err == "No resources found in kube-system namespace.\n"


async def test_top_needs_nodes_stats(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await running_pod(admin)
    reader = rbac_pb2.ClusterRole(
        rules=[rbac_pb2.PolicyRule(api_groups=[""], resources=["nodes", "pods"], verbs=["get", "list"])]
    )
    reader.metadata.name = "reader"
    await admin.create(reader)
    binding = rbac_pb2.ClusterRoleBinding()
    binding.metadata.name = "vera-reads"
    binding.role_ref.api_group, binding.role_ref.kind, binding.role_ref.name = (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "reader",
    )
    binding.subjects.add(kind="User", name="vera", api_group="rbac.authorization.k8s.io")
    await admin.create(binding)
    pki_dir = proxy.directory / "pki"
    pki.issue(pki.KeyPair.read(pki_dir, "ca"), "vera").write(pki_dir, "vera")
    server = load(proxy.directory / "admin.conf").server
    (proxy.directory / "vera.conf").write_text(
        render(
            "vera",
            server,
            str(pki_dir / "ca.crt"),
            cert_file=str(pki_dir / "vera.crt"),
            key_file=str(pki_dir / "vera.key"),
        )
    )
    refusal = 'Error from server (Forbidden): nodes "n1" is forbidden: User "vera" cannot get resource "nodes/stats"'
    for argv in (["top", "node"], ["top", "pod", "p"]):
        out, err = io.StringIO(), io.StringIO()
        code = await main_async(["--kubeconfig", str(proxy.directory / "vera.conf"), *argv], out=out, err=err)
        assert code == 1 and refusal in err.getvalue(), err.getvalue()
    assert proxy.kubelet.calls == []
