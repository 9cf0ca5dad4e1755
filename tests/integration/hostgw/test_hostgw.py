"""pinnace-hostgw in real network namespaces: two nodes on a LAN, a pod behind each.

    phg-T-lan  bridge br-lan 192.168.56.0/24
      |-- phg-T-n1  eth0 .11, veth to phg-T-p1 (pod 10.244.1.2, gateway 10.244.1.1)
      `-- phg-T-n2  eth0 .12, veth to phg-T-p2 (pod 10.244.2.2, gateway 10.244.2.1)

The apiserver program runs on the root namespace's loopback; each node's host-gw program
runs there too with --netns, so its routes land in the node namespace. Nothing is added to
the root namespace; the namespaces (and with them every link and route) go at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from tests.integration.apiserver.process import ApiserverProcess
from tests.integration.conftest import missing

REPO = Path(__file__).resolve().parents[3]
ENV = dict(os.environ, PINNACE_LOG_FORMAT="json", PYTHONPATH=f"{REPO}:{REPO / 'protos'}:{REPO / 'cmd'}")
SERVER = "import socket,sys;s=socket.create_server(('0.0.0.0',8080));print('ready',flush=True);c,a=s.accept();c.sendall(a[0].encode())"
ASK = "import socket,sys;c=socket.create_connection((sys.argv[1],8080),timeout=5);print(c.recv(100).decode())"


def sh(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


class Net:
    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.namespaces: list[str] = []

    def ns(self, suffix: str) -> str:
        name = f"phg-{self.tag}-{suffix}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def build(self) -> None:
        self.lan = self.ns("lan")
        sh("ip", "-n", self.lan, "link", "add", "br-lan", "type", "bridge")
        sh("ip", "-n", self.lan, "link", "set", "br-lan", "up")
        for i in (1, 2):
            node, pod = self.ns(f"n{i}"), self.ns(f"p{i}")
            sh(
                "ip",
                "-n",
                self.lan,
                "link",
                "add",
                f"n{i}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                node,
            )
            sh("ip", "-n", self.lan, "link", "set", f"n{i}", "master", "br-lan", "up")
            sh("ip", "-n", node, "addr", "add", f"192.168.56.{10 + i}/24", "dev", "eth0")
            sh("ip", "-n", node, "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            sh("ip", "-n", node, "link", "add", "vpod", "type", "veth", "peer", "name", "eth0", "netns", pod)
            sh("ip", "-n", node, "addr", "add", f"10.244.{i}.1/24", "dev", "vpod")
            sh("ip", "-n", node, "link", "set", "vpod", "up")
            sh("ip", "-n", pod, "addr", "add", f"10.244.{i}.2/24", "dev", "eth0")
            sh("ip", "-n", pod, "link", "set", "eth0", "up")
            sh("ip", "-n", pod, "route", "add", "default", "via", f"10.244.{i}.1")

    def name(self, suffix: str) -> str:
        return f"phg-{self.tag}-{suffix}"

    def routes(self, node: str) -> str:
        return sh("ip", "-n", self.name(node), "route", "show", "proto", "73")

    def teardown(self) -> None:
        for name in reversed(self.namespaces):
            sh("ip", "netns", "del", name, check=False)


@pytest.fixture
def net() -> Iterator[Net]:
    if os.geteuid() != 0:
        missing("needs root")
    lab = Net()
    try:
        lab.build()
        yield lab
    finally:
        lab.teardown()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[ApiserverProcess, Client]]:
    apiserver = ApiserverProcess(tmp_path)
    await apiserver.start(timeout=60)
    client = Client.connect(apiserver.address, timeout=20)
    try:
        yield apiserver, client
    finally:
        await client.close()
        apiserver.stop()


class HostGW:
    def __init__(self, tmp: Path, apiserver: str, net: Net, node: str) -> None:
        self.argv = [
            sys.executable, "-m", "pinnace_cmd.hostgw", "--apiserver", apiserver, "--node-name", node,
            "--netns", f"/run/netns/{net.name(node)}", "--resync-period", "1",
        ]  # fmt: skip
        self.log = tmp / f"hostgw-{node}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=log, env=ENV)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextlib.contextmanager
def hostgws(tmp: Path, apiserver: str, net: Net, *nodes: str) -> Iterator[list[HostGW]]:
    programs = [HostGW(tmp, apiserver, net, node) for node in nodes]
    try:
        for program in programs:
            program.start()
        yield programs
    finally:
        for program in programs:
            program.stop()


def node(name: str, index: int) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = name
    n.spec.pod_cidr = f"10.244.{index}.0/24"
    n.status.addresses.add(type="InternalIP", address=f"192.168.56.{10 + index}")
    return n


async def until(predicate, what: str, timeout: float = 30.0, logs: list[HostGW] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            detail = "\n".join(p.log.read_text()[-3000:] for p in logs or [] if p.log.exists())
            raise AssertionError(f"{what} not reached\n{detail}")
        await asyncio.sleep(0.2)


async def test_pods_reach_each_other_across_nodes_and_routes_follow_the_nodes(net, api, tmp_path):
    apiserver, client = api
    await client.create(node("n1", 1))
    await client.create(node("n2", 2))
    with hostgws(tmp_path, apiserver.address, net, "n1", "n2") as programs:
        await until(
            lambda: "10.244.2.0/24 via 192.168.56.12" in net.routes("n1"), "n1's route", logs=programs
        )
        await until(
            lambda: "10.244.1.0/24 via 192.168.56.11" in net.routes("n2"), "n2's route", logs=programs
        )
        for name in ("n1", "n2"):
            routes = net.routes(name)
            assert "unreachable 10.244.0.0/16" in routes
            assert "10.96.0.0/12 dev pinnace-svc" in routes
            assert f"10.244.{name[1]}.0/24" not in routes  # its own pod CIDR is local
        server = subprocess.Popen(
            ["ip", "netns", "exec", net.name("p2"), sys.executable, "-c", SERVER], stdout=subprocess.PIPE
        )
        try:
            assert server.stdout is not None and b"ready" in server.stdout.readline()
            answer = sh("ip", "netns", "exec", net.name("p1"), sys.executable, "-c", ASK, "10.244.2.2")
            assert answer.strip() == "10.244.1.2"  # pod address kept end to end: no NAT on the way
        finally:
            server.kill()
            server.wait()

        await client.create(node("n3", 3))
        await until(
            lambda: "10.244.3.0/24 via 192.168.56.13" in net.routes("n1"), "n3's route", logs=programs
        )
        await client.delete("nodes", "n3")
        await until(lambda: "10.244.3.0/24" not in net.routes("n1"), "n3's route removal", logs=programs)


async def test_cluster_addresses_without_an_owner_die_on_the_node(net, api, tmp_path):
    apiserver, client = api
    await client.create(node("n1", 1))
    with hostgws(tmp_path, apiserver.address, net, "n1") as programs:
        await until(lambda: "unreachable 10.244.0.0/16" in net.routes("n1"), "catch-alls", logs=programs)
        probe = "import socket,sys\ntry:\n socket.create_connection((sys.argv[1],80),timeout=10)\nexcept OSError as e: print(e.errno)"
        pod_to_unknown_pod = sh(
            "ip", "netns", "exec", net.name("p1"), sys.executable, "-c", probe, "10.244.77.5"
        )
        node_to_unknown_pod = sh(
            "ip", "netns", "exec", net.name("n1"), sys.executable, "-c", probe, "10.244.77.5"
        )
        pod_to_unknown_service = sh(
            "ip", "netns", "exec", net.name("p1"), sys.executable, "-c", probe, "10.96.77.5"
        )
        assert pod_to_unknown_pod.strip() == "113"  # EHOSTUNREACH: ICMP from the node
        assert node_to_unknown_pod.strip() == "113"
        assert pod_to_unknown_service.strip() == "113"  # after a failed ARP on the portless bridge
        route = sh("ip", "-n", net.name("n1"), "route", "get", "10.96.77.5")
        assert "dev pinnace-svc" in route and "src 192.168.56.11" in route


async def test_a_restart_removes_routes_of_nodes_deleted_meanwhile(net, api, tmp_path):
    apiserver, client = api
    for index in (1, 2, 3):
        await client.create(node(f"n{index}", index))
    with hostgws(tmp_path, apiserver.address, net, "n1") as programs:
        await until(lambda: "10.244.3.0/24 via" in net.routes("n1"), "n3's route", logs=programs)
    sh("ip", "-n", net.name("n1"), "route", "add", "10.244.200.0/24", "via", "192.168.56.99")  # not ours
    await client.delete("nodes", "n3")
    assert "10.244.3.0/24 via" in net.routes("n1")  # stopping leaves the routes in place
    with hostgws(tmp_path, apiserver.address, net, "n1") as programs:
        await until(lambda: "10.244.3.0/24" not in net.routes("n1"), "stale route removal", logs=programs)
        assert "10.244.2.0/24 via 192.168.56.12" in net.routes("n1")
    assert "10.244.200.0/24 via 192.168.56.99" in sh("ip", "-n", net.name("n1"), "route")


def test_bad_flags_fail_clearly_and_change_nothing(net):
    done = subprocess.run(
        [sys.executable, "-m", "pinnace_cmd.hostgw", "--node-name", "n1", "--cluster-cidr", "10.244.0.0",
         "--netns", f"/run/netns/{net.name('n1')}"],
        capture_output=True, text=True, env=ENV, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "--cluster-cidr '10.244.0.0' is not a CIDR" in done.stderr
    assert net.routes("n1") == ""
    missing_ns = subprocess.run(
        [sys.executable, "-m", "pinnace_cmd.hostgw", "--node-name", "n1", "--netns", "/run/netns/phg-absent"],
        capture_output=True, text=True, env=ENV, timeout=60, check=False,
    )  # fmt: skip
    assert missing_ns.returncode == 1
    assert "network namespace /run/netns/phg-absent does not exist" in missing_ns.stderr
