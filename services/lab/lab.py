"""The lab: a master, N nodes and a client, each a network namespace on a lab LAN (docs/lab.md).

    pl-NAME-lan     bridge br-lan, one port per host (named after the host)
    pl-NAME-master  eth0 192.168.56.10   pinnace server --disable-agent (or three programs)
    pl-NAME-nodeI   eth0 192.168.56.1I   pinnace agent (Node NAME-nodeI)
    pl-NAME-client  eth0 192.168.56.100  the outside world

Every link is created inside the namespaces (`ip -n`), so nothing is added to the root
namespace. The programs run inside their host's namespace through `nsenter --net` only: they
keep the machine's mount namespace, so the mounts a kubelet makes for volumes are the ones
dockerd sees (`ip netns exec` would give them a private mount namespace). They run in their
own sessions, detached, so a lab outlives the command that built it; the state file records
each pid with its start time, so teardown kills exactly the lab's processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.config import load as load_client_config
from services.lab.relay import Relay, open_in
from services.lab.state import (
    CLIENT_IP,
    DEFAULT_STATE_ROOT,
    LAN_HOST,
    LAN_PREFIX,
    MASTER_IP,
    Host,
    LabError,
    LabState,
    Process,
    check_name,
    is_ours,
    netns_name,
    process_start_time,
)

T = TypeVar("T")
HTTPS_PORT = 6443
TOKEN_PORT = 6444
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
# The CRI shim's owner label (runtime_shims/docker): one dockerd serves every lab node, and a
# node's containers are the ones carrying its Node's name here.
NODE_LABEL = "io.pinnace.cri.node"
PYTHON = [sys.executable, "-m"]
ENV = {"PINNACE_LOG_FORMAT": "json"}


def sh(*argv: str, check: bool = True, timeout: float = 60.0) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _in_thread(coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private loop: the lab's API is synchronous and may be
    called from inside a running loop (an async test or fixture)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coroutine()))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="lab-api")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


class Lab:
    """A running lab. Build one with `Lab.up`, reattach with `Lab.load`, remove with `down`."""

    def __init__(self, state: LabState) -> None:
        self.state = state
        self._relay: Relay | None = None
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def state_dir(self) -> Path:
        return self.state.directory

    @property
    def hosts(self) -> dict[str, Host]:
        return {host.name: host for host in self.state.hosts}

    @property
    def master(self) -> Host:
        return self.hosts["master"]

    @property
    def nodes(self) -> list[Host]:
        return [host for host in self.state.hosts if host.role == "node"]

    @property
    def client(self) -> Host:
        return self.hosts["client"]

    @property
    def node_names(self) -> list[str]:
        return [host.node_name for host in self.state.hosts if host.node_name]

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "admin.conf"

    @property
    def components(self) -> list[str]:
        return list(self.state.processes)

    def host(self, name: str) -> Host:
        if name == LAN_HOST:
            return Host(LAN_HOST, "lan", "", netns_name(self.name, LAN_HOST))
        try:
            return self.hosts[name]
        except KeyError:
            known = ", ".join([*self.hosts, LAN_HOST])
            raise LabError(f"lab {self.name!r} has no host {name!r} (hosts: {known})") from None

    # ------------------------------------------------------------------ building

    @classmethod
    def up(
        cls,
        nodes: int = 2,
        *,
        name: str = "lab",
        state_root: Path = DEFAULT_STATE_ROOT,
        split_control_plane: bool = False,
        master_agent: bool = False,
        server_args: Sequence[str] = (),
        apiserver_args: Sequence[str] = (),
        scheduler_args: Sequence[str] = (),
        controller_manager_args: Sequence[str] = (),
        agent_args: Sequence[str] = (),
        timeout: float = 180.0,
    ) -> Lab:
        """Build the lab, start the control plane and the agents, and wait until every node is
        Ready. On any failure, tear down what was built and raise LabError with the logs.

        Extra flags: `server_args` for `pinnace server`; `apiserver_args`, `scheduler_args` and
        `controller_manager_args` for those programs (with one server they become its
        --kube-*-arg flags); `agent_args` for every `pinnace agent`."""
        check_name(name)
        if not 0 <= nodes <= 80:
            raise LabError(f"nodes must be between 0 and 80, not {nodes}")
        if nodes == 0 and not master_agent:
            raise LabError("a lab without nodes needs --master-agent (the master as its only node)")
        if split_control_plane and master_agent:
            raise LabError(
                "--master-agent needs `pinnace server`; it cannot be combined with a split control plane"
            )
        if (state_root / name / "state.json").exists():
            raise LabError(f"lab {name!r} already exists; `pinnace lab down --name {name}` first")
        leftovers = [n for n in _netns_list() if n.startswith(f"pl-{name}-")]
        if leftovers:
            raise LabError(
                f"namespaces of a lab {name!r} exist ({', '.join(leftovers)}); run `pinnace lab down`"
            )
        state = LabState(name, str(state_root.resolve()), nodes, split_control_plane, master_agent)
        state.hosts = [
            Host(
                "master",
                "master",
                MASTER_IP,
                netns_name(name, "master"),
                f"{name}-master" if master_agent else "",
            ),
            *(
                Host(
                    f"node{i}",
                    "node",
                    f"{LAN_PREFIX}.{10 + i}",
                    netns_name(name, f"node{i}"),
                    f"{name}-node{i}",
                )
                for i in range(1, nodes + 1)
            ),
            Host("client", "client", CLIENT_IP, netns_name(name, "client")),
        ]
        state.save()  # first, so that a crash from here on can be cleaned up
        lab = cls(state)
        try:
            lab._network()
            lab._control_plane(
                list(server_args), list(apiserver_args), list(scheduler_args), list(controller_manager_args)
            )
            lab._wait(lab._apiserver_answers, timeout, "the apiserver to answer")
            token = lab._join_token(timeout)
            for host in lab.nodes:
                lab._start_agent(host, token, list(agent_args))
            lab.wait_nodes_ready(timeout)
        except BaseException as exc:
            logs = lab.log_tails()
            lab.down()
            if isinstance(exc, LabError):
                raise LabError(f"{exc}\n{logs}") from None
            raise
        return lab

    @classmethod
    def load(cls, name: str = "lab", state_root: Path = DEFAULT_STATE_ROOT) -> Lab:
        return cls(LabState.load(name, state_root))

    def _network(self) -> None:
        lan = netns_name(self.name, LAN_HOST)
        _netns_add(lan)
        sh("ip", "-n", lan, "link", "add", "br-lan", "type", "bridge")
        sh("ip", "-n", lan, "link", "set", "br-lan", "up")
        for host in self.state.hosts:
            _netns_add(host.netns)
            peer = ["peer", "name", "eth0", "netns", host.netns]
            # `name` and `dev`: a host called "master" would otherwise read as the keyword
            sh("ip", "-n", lan, "link", "add", "name", host.name, "type", "veth", *peer)
            sh("ip", "-n", lan, "link", "set", "dev", host.name, "master", "br-lan", "up")
            sh("ip", "-n", host.netns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
            sh("ip", "-n", host.netns, "link", "set", "eth0", "up")
            if host.role != "client":
                sh("ip", "netns", "exec", host.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def _control_plane(
        self, server_args: list[str], apiserver_args: list[str], scheduler_args: list[str], cm_args: list[str]
    ) -> None:
        data = self.state_dir / "master"
        common = ["--cluster-cidr", CLUSTER_CIDR]
        if not self.state.split_control_plane:
            server_args = [
                *server_args,
                *(f"--kube-apiserver-arg={a}" for a in apiserver_args),
                *(f"--kube-scheduler-arg={a}" for a in scheduler_args),
                *(f"--kube-controller-manager-arg={a}" for a in cm_args),
            ]
            argv = [
                *PYTHON, "pinnace_cmd.main", "server", "--data-dir", str(data),
                "--node-ip", MASTER_IP, "--write-kubeconfig", str(self.kubeconfig),
                "--https-port", str(HTTPS_PORT), "--token-port", str(TOKEN_PORT),
                "--service-cidr", SERVICE_CIDR, *common,
                *(["--node-name", self.master.node_name] if self.state.master_agent else ["--disable-agent"]),
                *server_args,
            ]  # fmt: skip
            self._launch("server", self.master, argv)
            return
        sh(
            *PYTHON, "pinnace_cmd.main", "bootstrap", "--dir", str(data),
            "--server", f"{MASTER_IP}:{HTTPS_PORT}", "--apiserver-ip", MASTER_IP,
        )  # fmt: skip
        self.kubeconfig.write_text((data / "admin.conf").read_text())
        self.kubeconfig.chmod(0o600)
        pki = data / "pki"
        self._launch(
            "apiserver",
            self.master,
            [
                *PYTHON, "pinnace_cmd.main", "apiserver", "--listen", f"0.0.0.0:{HTTPS_PORT}",
                "--token-listen", f"0.0.0.0:{TOKEN_PORT}", "--advertise-address", MASTER_IP,
                "--sqlite-path", str(data / "state.db"), "--service-cluster-ip-range", SERVICE_CIDR,
                "--tls-cert-file", str(pki / "apiserver.crt"),
                "--tls-private-key-file", str(pki / "apiserver.key"),
                "--client-ca-file", str(pki / "ca.crt"), "--service-account-key-file", str(pki / "sa.key"),
                "--service-account-signing-key-file", str(pki / "sa.key"),
                "--kubelet-client-certificate", str(pki / "apiserver-kubelet-client.crt"),
                "--kubelet-client-key", str(pki / "apiserver-kubelet-client.key"),
                "--anonymous-auth", "--enable-bootstrap-token-auth", *apiserver_args,
            ],
        )  # fmt: skip
        self._launch(
            "scheduler",
            self.master,
            [
                *PYTHON,
                "pinnace_cmd.scheduler",
                "--kubeconfig",
                str(data / "scheduler.conf"),
                "--leader-elect",
                "false",
                *scheduler_args,
            ],
        )
        self._launch(
            "controller-manager",
            self.master,
            [
                *PYTHON, "pinnace_cmd.main", "controller-manager",
                "--kubeconfig", str(data / "controller-manager.conf"),
                "--leader-elect", "false", "--cluster-signing-cert-file", str(pki / "ca.crt"),
                "--cluster-signing-key-file", str(pki / "ca.key"), *common, *cm_args,
            ],
        )  # fmt: skip

    def _join_token(self, timeout: float) -> Path:
        """The join token agents get: the server's node-token, or (split) a new token."""
        path = self.state_dir / "node-token"
        if not self.state.split_control_plane:
            token = self.state_dir / "master" / "node-token"
            self._wait(token.exists, timeout, "the server's node-token")
            path.write_text(token.read_text())
        else:
            created = self.exec(
                "master",
                [*PYTHON, "pinnace_cmd.main", "token", "create", "--kubeconfig", str(self.kubeconfig),
                 "--ttl", "0", "--description", "lab nodes", "--print-join-token"],
            )  # fmt: skip
            path.write_text(created.stdout.strip() + "\n")
        path.chmod(0o600)
        return path

    def _start_agent(self, host: Host, token: Path, agent_args: list[str]) -> None:
        argv = [
            *PYTHON, "pinnace_cmd.main", "agent", "--server", f"{MASTER_IP}:{HTTPS_PORT}",
            "--token-port", str(TOKEN_PORT), "--token-file", str(token),
            "--data-dir", str(self.state_dir / host.name / "agent"), "--node-name", host.node_name,
            "--node-ip", host.ip, "--cluster-cidr", CLUSTER_CIDR, "--service-cidr", SERVICE_CIDR, *agent_args,
        ]  # fmt: skip
        self._launch(f"agent-{host.name}", host, argv)

    def _launch(self, name: str, host: Host, argv: list[str]) -> None:
        log = self.state_dir / host.name / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        process = Process(name, host.name, argv, str(log))
        self.state.processes[name] = process
        self._spawn(process)

    def _spawn(self, process: Process) -> None:
        host = self.host(process.host)
        with Path(process.log).open("ab") as log:
            child = subprocess.Popen(
                ["nsenter", f"--net={host.netns_path}", "--", *process.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **ENV},
                start_new_session=True,
            )
        self._children[child.pid] = child
        process.pid = child.pid
        process.start_time = process_start_time(child.pid)
        self.state.save()

    # ------------------------------------------------------------------ waiting and the API

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            dead = [p.name for p in self.state.processes.values() if not is_ours(p)]
            if dead:
                raise LabError(f"{', '.join(dead)} exited while waiting for {what}")
            if time.monotonic() > deadline:
                raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.2)

    def _apiserver_answers(self) -> bool:
        if not self.kubeconfig.exists():
            return False
        try:
            open_in(self.client.netns_path, MASTER_IP, HTTPS_PORT, timeout=1).close()
        except OSError:
            return False
        return True

    @property
    def api_address(self) -> str:
        """127.0.0.1:PORT in this process's namespace, relayed to the apiserver (docs/lab.md)."""
        if self._relay is None:
            self._relay = Relay(self.client.netns_path, MASTER_IP, HTTPS_PORT)
        return self._relay.address

    @contextlib.asynccontextmanager
    async def api_client(self, timeout: float = 20.0) -> AsyncIterator[Client]:
        """The admin's client, through the relay, on the caller's event loop."""
        credentials = dataclasses.replace(load_client_config(self.kubeconfig), server=self.api_address)
        async with credentials.client(timeout=timeout) as client:
            yield client

    def _ready_nodes(self) -> set[str]:
        async def ready() -> set[str]:
            async with self.api_client(timeout=5) as client:
                listed = await client.list("nodes")
            return {
                n.metadata.name
                for n in listed.items
                if isinstance(n, core_pb2.Node)
                and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
            }

        try:
            return _in_thread(ready)
        except Exception:
            return set()

    def wait_nodes_ready(self, timeout: float = 120.0) -> None:
        """Until every lab node's Node is Ready; LabError on timeout or a dead component."""
        wanted = set(self.node_names)
        self._wait(lambda: wanted <= self._ready_nodes(), timeout, f"nodes {sorted(wanted)} to be Ready")

    # ------------------------------------------------------------------ using the lab

    def exec(
        self,
        host: str,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = 60.0,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside a host's namespace (`ip netns exec`); LabError if check and it fails."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.host(host).netns, *argv],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **ENV, **(env or {})},
        )
        if check and done.returncode != 0:
            output = done.stderr.strip() or done.stdout.strip()
            raise LabError(f"{host}: {' '.join(argv)} exited {done.returncode}: {output}")
        return done

    def pinctl(
        self,
        *args: str,
        host: str = "client",
        check: bool = True,
        timeout: float = 60.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """pinctl with the admin's configuration, run on a lab host (the client by default)."""
        argv = [*PYTHON, "pinnace_cmd.pinctl", "--kubeconfig", str(self.kubeconfig), *args]
        return self.exec(host, argv, check=check, timeout=timeout, input=input)

    def connect(self, host: str, ip: str, port: int, timeout: float = 2.0) -> socket.socket:
        """A TCP connection to ip:port opened from inside a host's namespace."""
        return open_in(self.host(host).netns_path, ip, port, timeout)

    def http_get(self, host: str, ip: str, port: int, path: str = "/", timeout: float = 2.0) -> str:
        """The body of GET path from inside a host's namespace; ConnectionError unless 200."""
        with self.connect(host, ip, port, timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n".encode())
            data = b""
            deadline = time.monotonic() + timeout
            while chunk := sock.recv(65536):
                data += chunk
                if time.monotonic() > deadline:
                    raise TimeoutError(f"slow answer from {ip}:{port}")
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            raise ConnectionError(f"{ip}:{port}{path} answered {status.decode(errors='replace')!r}")
        return body.decode(errors="replace")

    def kill(self, component: str, sig: int = signal.SIGKILL, timeout: float = 30.0) -> None:
        """Signal a component by pid and wait until it has exited."""
        process = self._process(component)
        if is_ours(process):
            os.kill(process.pid, sig)
        self._reap(process, timeout)

    def start(self, component: str) -> None:
        """Start a stopped component again with its original command line."""
        process = self._process(component)
        if is_ours(process):
            raise LabError(f"{component} is running (pid {process.pid})")
        self._spawn(process)

    def restart(self, component: str, sig: int = signal.SIGTERM) -> None:
        self.kill(component, sig)
        self.start(component)

    def alive(self, component: str) -> bool:
        return is_ours(self._process(component))

    def cut_link(self, host: str) -> None:
        """Take the host's LAN port down: it can reach nobody and nobody can reach it."""
        sh("ip", "-n", netns_name(self.name, LAN_HOST), "link", "set", "dev", self.host(host).name, "down")

    def restore_link(self, host: str) -> None:
        sh("ip", "-n", netns_name(self.name, LAN_HOST), "link", "set", "dev", self.host(host).name, "up")

    def logs(self, component: str, tail: int = 200) -> str:
        try:
            lines = Path(self._process(component).log).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    def log_tails(self, tail: int = 40) -> str:
        return "\n".join(f"--- {name}\n{self.logs(name, tail)}" for name in self.state.processes)

    def status(self) -> dict[str, Any]:
        present = set(_netns_list())
        return {
            "name": self.name,
            "state_dir": str(self.state_dir),
            "kubeconfig": str(self.kubeconfig),
            "hosts": [
                {**dataclasses.asdict(h), "netns_present": h.netns in present} for h in self.state.hosts
            ],
            "components": {
                p.name: {"host": p.host, "pid": p.pid, "alive": is_ours(p), "log": p.log}
                for p in self.state.processes.values()
            },
        }

    def _process(self, component: str) -> Process:
        try:
            return self.state.processes[component]
        except KeyError:
            raise LabError(
                f"lab {self.name!r} has no component {component!r} ({', '.join(self.components)})"
            ) from None

    def _reap(self, process: Process, timeout: float) -> None:
        child = self._children.pop(process.pid, None)
        deadline = time.monotonic() + timeout
        if child is not None:
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                raise LabError(f"{process.name} (pid {process.pid}) did not exit in {timeout:.0f}s") from None
            return
        while is_ours(process):
            if time.monotonic() > deadline:
                raise LabError(f"{process.name} (pid {process.pid}) did not exit in {timeout:.0f}s")
            time.sleep(0.05)

    # ------------------------------------------------------------------ teardown

    def down(self) -> None:
        """Remove everything the lab made; safe to call twice, and after a crash."""
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        for process in sorted(self.state.processes.values(), key=lambda p: p.host == "master"):
            if is_ours(process):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
            with contextlib.suppress(LabError):
                self._reap(process, 30)
        destroy(self.name, Path(self.state.root))


def destroy(name: str, state_root: Path = DEFAULT_STATE_ROOT) -> list[str]:
    """Tear down lab `name` from what is left of it (state file, namespaces, container labels);
    returns what was removed. Processes are killed only when the state file proves they are
    the lab's own."""
    check_name(name)
    removed: list[str] = []
    directory = state_root / name
    with contextlib.suppress(LabError):
        state = LabState.load(name, state_root)
        for process in state.processes.values():
            if is_ours(process):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                removed.append(f"process {process.name} ({process.pid})")
        for process in state.processes.values():
            deadline = time.monotonic() + 10
            while is_ours(process) and time.monotonic() < deadline:
                time.sleep(0.05)
    removed += _remove_containers(f"{name}-")
    removed += _unmount_under(directory)
    for netns in _netns_list():
        if netns.startswith(f"pl-{name}-"):
            sh("ip", "netns", "del", netns, check=False)
            removed.append(f"netns {netns}")
    if directory.exists():
        sh("rm", "-rf", "--one-file-system", str(directory), check=False)
        removed.append(f"dir {directory}")
    return removed


def _netns_add(name: str) -> None:
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")


def _netns_list() -> list[str]:
    return [line.split()[0] for line in sh("ip", "netns", "list", check=False).splitlines() if line.strip()]


def _remove_containers(node_prefix: str) -> list[str]:
    """Containers whose shim owner label names one of the lab's nodes."""
    listed = sh(
        "docker",
        "ps",
        "-a",
        "--filter",
        f"label={NODE_LABEL}",
        "--format",
        '{{.ID}} {{.Label "' + NODE_LABEL + '"}}',
        check=False,
    )
    ids = [
        line.split()[0]
        for line in listed.splitlines()
        if len(line.split()) == 2 and line.split()[1].startswith(node_prefix)
    ]
    for start in range(0, len(ids), 50):
        sh("docker", "rm", "-f", *ids[start : start + 50], check=False, timeout=120)
    return [f"container {cid}" for cid in ids]


def _unmount_under(directory: Path) -> list[str]:
    """Mounts a kubelet made for volumes under the lab's data dirs, deepest first."""
    prefix = str(directory.resolve()) + "/"
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if point.startswith(prefix):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        sh("umount", "-l", point, check=False)
    return [f"mount {p}" for p in points]
