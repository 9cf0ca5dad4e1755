"""A lab for the CRI shim: a "host" network namespace of its own (with a catch-all
unreachable route for the pod CIDR), a temp CNI conf dir pointing at Debian's reference
bridge/host-local/portmap plugins with a 10.244.x.0/24 subnet, and the shim running inside
that namespace. Every container the shim creates carries this lab's node label, so teardown
finds exactly its own containers and nothing of anybody else's."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from pinnace.cri.v1 import api_pb2 as cri
from pinnace.cri.v1 import api_pb2_grpc as cri_grpc

REPO = Path(__file__).resolve().parents[3]
REFERENCE_PLUGINS = Path("/usr/lib/cni")
NODE_LABEL = "io.pinnace.cri.node"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=60)


def conflist(name: str, bridge: str, subnet: str, data_dir: Path, portmap: bool = True) -> dict[str, Any]:
    plugins: list[dict[str, Any]] = [
        {
            "type": "bridge",
            "bridge": bridge,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": str(data_dir)},
        }
    ]
    if portmap:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
    return {"cniVersion": "1.0.0", "name": name, "plugins": plugins}


@dataclass
class Lab:
    """One host netns + CNI config + a shim process; `start()`/`stop()` may repeat (restarts)."""

    docker: Any
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    portmap: bool = True
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.netns = f"pcri-h-{self.suffix}"
        self.node = f"pcri-node-{self.suffix}"
        self.bridge = f"pcri{self.suffix}"
        self.octet = 100 + int(self.suffix, 16) % 150
        self.subnet = f"10.244.{self.octet}.0/24"
        self.gateway = f"10.244.{self.octet}.1"
        self.network = f"pcri-net-{self.suffix}"
        self.tmp = Path(tempfile.mkdtemp(prefix="pcri-"))
        self.conf_dir = self.tmp / "net.d"
        self.cache_dir = self.tmp / "cni-cache"
        self.ipam_dir = self.tmp / "ipam"
        self.log_root = self.tmp / "pods"
        self.socket = self.tmp / "cri.sock"
        self.shim_log = self.tmp / "shim.log"
        self.conf_dir.mkdir()
        self.channel: grpc.Channel | None = None

    # ---------------------------------------------------------------- setup / teardown

    def create(self) -> None:
        sh("ip", "netns", "add", self.netns)
        sh("ip", "-n", self.netns, "link", "set", "lo", "up")
        sh("ip", "-n", self.netns, "route", "add", "unreachable", "10.244.0.0/16")
        self.write_conflist()

    def write_conflist(self, doc: dict[str, Any] | None = None) -> None:
        doc = doc or conflist(self.network, self.bridge, self.subnet, self.ipam_dir, self.portmap)
        (self.conf_dir / "10-pcri.conflist").write_text(json.dumps(doc))

    def start(self, *extra: str) -> None:
        env = dict(
            os.environ, PINNACE_LOG_FORMAT="json", PYTHONPATH=f"{REPO}:{REPO / 'protos'}:{REPO / 'cmd'}"
        )
        command = [
            "ip", "netns", "exec", self.netns,
            sys.executable, "-m", "pinnace_cmd.cri_docker",
            "--socket", str(self.socket),
            "--cni-conf-dir", str(self.conf_dir),
            "--cni-bin-dir", str(REFERENCE_PLUGINS),
            "--cni-cache-dir", str(self.cache_dir),
            "--node-name", self.node,
            "--streaming-address", "127.0.0.1:0",
            *extra,
        ]  # fmt: skip
        with self.shim_log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"shim exited: {self.shim_log.read_text()[-2000:]}")
            if self.socket.exists():
                self.channel = grpc.insecure_channel(f"unix://{self.socket}")
                try:
                    self.runtime.Version(cri.VersionRequest(version="0.1.0"), timeout=5)
                    return
                except grpc.RpcError:
                    self.channel.close()
            time.sleep(0.1)
        raise RuntimeError(f"shim did not answer: {self.shim_log.read_text()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def destroy(self) -> None:
        self.stop()
        self.remove_containers()
        sh("ip", "netns", "del", self.netns, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def remove_containers(self) -> list[str]:
        """Force-remove this lab's containers (only ones carrying its node label)."""
        removed = []
        for c in self.docker.api.containers(all=True, filters={"label": f"{NODE_LABEL}={self.node}"}):
            with contextlib.suppress(Exception):
                self.docker.api.remove_container(c["Id"], force=True)
                removed.append(c["Id"])
        return removed

    # ---------------------------------------------------------------- clients

    @property
    def runtime(self) -> cri_grpc.RuntimeServiceStub:
        assert self.channel is not None
        return cri_grpc.RuntimeServiceStub(self.channel)

    @property
    def images(self) -> cri_grpc.ImageServiceStub:
        assert self.channel is not None
        return cri_grpc.ImageServiceStub(self.channel)

    # ---------------------------------------------------------------- leak checks

    def leftovers(self) -> list[str]:
        """Everything a finished test must not leave behind in this lab."""
        found = [f"container {c['Id'][:12]} {c['Names']}" for c in self.docker.api.containers(
            all=True, filters={"label": f"{NODE_LABEL}={self.node}"})]  # fmt: skip
        veths = sh("ip", "-n", self.netns, "-o", "link", "show", "type", "veth").stdout.strip()
        found += [f"veth {line.split(':')[1].strip()}" for line in veths.splitlines() if line]
        leases = self.ipam_dir / self.network
        if leases.is_dir():
            found += [
                f"ip lease {p.name}"
                for p in leases.iterdir()
                if p.name != "lock" and not p.name.startswith("last_")
            ]
        results = self.cache_dir / "results"
        if results.is_dir():
            found += [f"cni cache {p.name}" for p in results.iterdir()]
        return found

    def ns_exec(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.netns, *args, check=check)


def pod_config(lab: Lab, name: str, **kwargs: Any) -> cri.PodSandboxConfig:
    uid = secrets.token_hex(8)
    namespace = kwargs.pop("namespace", "pcri-test")
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, uid=uid, namespace=namespace, attempt=0),
        hostname=name,
        log_directory=str(lab.log_root / f"{namespace}_{name}_{uid}"),
        labels={"app": name, "io.kubernetes.pod.name": name},
        annotations={"pcri/annotation": "value with spaces = and :"},
        **kwargs,
    )


def container_config(
    name: str, *args: str, image: str = "pinnace/busybox:1.0", **kwargs: Any
) -> cri.ContainerConfig:
    return cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name=name, attempt=0),
        image=cri.ImageSpec(image=image),
        command=list(args[:1]),
        args=list(args[1:]),
        log_path=f"{name}/0.log",
        labels={"io.kubernetes.container.name": name},
        **kwargs,
    )


@contextlib.contextmanager
def running_pod(lab: Lab, name: str, **kwargs: Any) -> Any:
    """RunPodSandbox, and Stop+Remove at the end whatever happens in between."""
    config = pod_config(lab, name, **kwargs)
    sandbox_id = lab.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=config), timeout=60).pod_sandbox_id
    try:
        yield sandbox_id, config
    finally:
        if lab.channel is not None:
            lab.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=60)
            lab.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=60)


def start_container(lab: Lab, sandbox_id: str, pod: cri.PodSandboxConfig, config: cri.ContainerConfig) -> str:
    container_id = lab.runtime.CreateContainer(
        cri.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=config, sandbox_config=pod), timeout=60
    ).container_id
    lab.runtime.StartContainer(cri.StartContainerRequest(container_id=container_id), timeout=60)
    return str(container_id)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def exec_sync(lab: Lab, container_id: str, *cmd: str, timeout: int = 10) -> cri.ExecSyncResponse:
    response: cri.ExecSyncResponse = lab.runtime.ExecSync(
        cri.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=timeout), timeout=timeout + 10
    )
    return response
