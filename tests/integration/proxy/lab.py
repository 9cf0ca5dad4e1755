"""The proxy lab: two node namespaces with pods, a client outside the cluster, a lab LAN.

    ppx-T-lan   bridge br-lan  (the lab LAN 192.168.56.0/24, like a Vagrant private network)
      |-- ppx-T-n1  eth0 192.168.56.11, bridge cbr0 10.244.1.1/24, pods ppx-T-p11.. (10.244.1.2..)
      |-- ppx-T-n2  eth0 192.168.56.12, bridge cbr0 10.244.2.1/24, pods ppx-T-p21.. (10.244.2.2..)
      `-- ppx-T-c   eth0 192.168.56.100 (a client host outside the cluster)

Every link is created inside the namespaces (`ip -n`), never in the root namespace. Each node
routes the other's pod subnet over the LAN and holds the catch-all routes of DESIGN.md 7:
`unreachable 10.244.0.0/16`, and the service CIDR on the node's own bridge (no dummy
devices on this kernel), so no cluster address can leave the machine. Pods run
podserver.py (real endpoints answering their name). `teardown()` kills what it started by pid
and deletes the namespaces, which removes every link, bridge and rule inside them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from services.proxy.netns import NodeNamespace

PODSERVER = Path(__file__).with_name("podserver.py")
POD_PORT = 8080
SERVICE_CIDR = "10.96.0.0/12"
CLUSTER_CIDR = "10.244.0.0/16"


def sh(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Pod:
    name: str
    netns: str
    ip: str
    node: str
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Node:
    name: str
    netns: str
    ip: str
    pod_cidr: str
    pods: list[Pod] = field(default_factory=list)


class Lab:
    def __init__(self, pods_per_node: tuple[int, ...] = (3, 1)) -> None:
        self.tag = uuid.uuid4().hex[:5]
        self.namespaces: list[str] = []
        self.nodes: list[Node] = []
        self.client_netns = ""
        self.lan_netns = ""
        self.pods_per_node = pods_per_node
        self._threads: dict[str, NodeNamespace] = {}

    def ns(self, suffix: str) -> str:
        name = f"ppx-{self.tag}-{suffix}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def build(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    def _build(self) -> None:
        self.lan_netns = lan = self.ns("lan")
        sh("ip", "-n", lan, "link", "add", "br-lan", "type", "bridge")
        sh("ip", "-n", lan, "link", "set", "br-lan", "up")
        for index, pod_count in enumerate(self.pods_per_node, start=1):
            node_ns = self.ns(f"n{index}")
            node = Node(f"node{index}", node_ns, f"192.168.56.{10 + index}", f"10.244.{index}.0/24")
            self._attach_lan(node_ns, f"n{index}", node.ip)
            sh("ip", "netns", "exec", node_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            # The kernel suppresses ICMP errors to a host it has not sent one to in the last
            # second (and to a new host at first): REJECTs would look like drops (docs/proxy.md).
            sh("ip", "netns", "exec", node_ns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
            sh("ip", "-n", node_ns, "link", "add", "cbr0", "type", "bridge")
            sh("ip", "-n", node_ns, "addr", "add", f"10.244.{index}.1/24", "dev", "cbr0")
            sh("ip", "-n", node_ns, "link", "set", "cbr0", "up")
            sh("ip", "-n", node_ns, "route", "add", SERVICE_CIDR, "dev", "cbr0", "src", f"10.244.{index}.1")
            sh("ip", "-n", node_ns, "route", "add", "unreachable", CLUSTER_CIDR)
            for pod_index in range(1, pod_count + 1):
                pod_ns = self.ns(f"p{index}{pod_index}")
                pod = Pod(f"pod{index}{pod_index}", pod_ns, f"10.244.{index}.{1 + pod_index}", node.name)
                veth = f"vp{pod_index}"
                sh(
                    "ip",
                    "-n",
                    node_ns,
                    "link",
                    "add",
                    veth,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    pod_ns,
                )
                sh("ip", "-n", node_ns, "link", "set", veth, "master", "cbr0", "up")
                # as the CNI bridge plugin's hairpinMode: a pod reaching itself through a
                # service leaves and re-enters by the same bridge port
                sh("ip", "-n", node_ns, "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
                sh("ip", "-n", pod_ns, "addr", "add", f"{pod.ip}/24", "dev", "eth0")
                sh("ip", "-n", pod_ns, "link", "set", "eth0", "up")
                sh("ip", "-n", pod_ns, "route", "add", "default", "via", f"10.244.{index}.1")
                node.pods.append(pod)
            self.nodes.append(node)
        for node in self.nodes:
            for other in self.nodes:
                if other is not node:
                    sh("ip", "-n", node.netns, "route", "add", other.pod_cidr, "via", other.ip)
        self.client_netns = self.ns("c")
        self._attach_lan(self.client_netns, "c", "192.168.56.100")
        for pod in self.pods:
            self._start_pod(pod)

    def _attach_lan(self, netns: str, port: str, ip: str) -> None:
        sh(
            "ip",
            "-n",
            self.lan_netns,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            netns,
        )
        sh("ip", "-n", self.lan_netns, "link", "set", port, "master", "br-lan", "up")
        sh("ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", netns, "link", "set", "eth0", "up")

    def _start_pod(self, pod: Pod) -> None:
        pod.process = subprocess.Popen(
            ["ip", "netns", "exec", pod.netns, sys.executable, str(PODSERVER), pod.name, str(POD_PORT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert pod.process.stdout is not None
        line = pod.process.stdout.readline()
        if b"ready" not in line:
            raise RuntimeError(f"pod server {pod.name} did not start")

    @property
    def pods(self) -> list[Pod]:
        return [pod for node in self.nodes for pod in node.pods]

    def path(self, netns: str) -> str:
        return f"/run/netns/{netns}"

    def threads(self, netns: str) -> NodeNamespace:
        """Threads inside `netns`, to open test sockets there."""
        if netns not in self._threads:
            self._threads[netns] = NodeNamespace(self.path(netns), workers=8)
        return self._threads[netns]

    def teardown(self) -> None:
        for threads in self._threads.values():
            threads.close()
        self._threads.clear()
        for pod in self.pods:
            if pod.process is not None and pod.process.poll() is None:
                os.kill(pod.process.pid, signal.SIGKILL)
                pod.process.wait(timeout=10)
        for netns in reversed(self.namespaces):
            sh("ip", "netns", "del", netns, check=False)
        self.namespaces.clear()


# ---------------------------------------------------------------------- probes (run in a netns)


def http_get(ip: str, port: int, timeout: float = 2.0) -> str:
    """The answering pod's name; raises OSError (refused, reset, timeout) otherwise."""
    with socket.create_connection((ip, port), timeout=timeout) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        deadline = time.monotonic() + timeout
        while chunk := sock.recv(4096):
            data += chunk
            if time.monotonic() > deadline:
                raise TimeoutError("slow answer")
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        raise ConnectionError(f"unexpected answer {data[:80]!r}")
    return body.decode().split()[0]


def http_get_peer(ip: str, port: int, timeout: float = 2.0) -> tuple[str, str]:
    """(pod name, the client address the pod saw)."""
    with socket.create_connection((ip, port), timeout=timeout) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    name, peer = data.partition(b"\r\n\r\n")[2].decode().split()
    return name, peer


def udp_ask(ip: str, port: int, timeout: float = 1.0) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(b"who", (ip, port))
        data, _ = sock.recvfrom(4096)
    return data.decode().split()[0]


def try_get(ip: str, port: int, timeout: float = 2.0) -> str:
    """The pod name, or the error's class name (ConnectionRefusedError, TimeoutError...)."""
    try:
        return http_get(ip, port, timeout)
    except OSError as exc:
        return type(exc).__name__


def spread(ip: str, port: int, count: int, timeout: float = 2.0) -> dict[str, int]:
    seen: dict[str, int] = {}
    for _ in range(count):
        answer = try_get(ip, port, timeout)
        seen[answer] = seen.get(answer, 0) + 1
    return seen


def root_kube_chains() -> list[str]:
    """KUBE-* chains in the root namespace's tables, in either backend (must stay empty)."""
    found = []
    for tool in ("iptables-legacy-save", "iptables-nft-save"):
        done = subprocess.run([tool], capture_output=True, text=True, check=False)
        found += [f"{tool}: {line}" for line in done.stdout.splitlines() if line.startswith(":KUBE-")]
    return found
