"""A whole node for the kubelet's integration tests: a "node" network namespace (prefix
pkl-, loopback up, a catch-all `unreachable 10.244.0.0/16`), the CRI shim running inside it
with Debian's reference CNI plugins, the real apiserver program on 127.0.0.1, and the
kubelet program in the root namespace talking to both (the apiserver on loopback, the shim
over its unix socket), with --network-namespace pointing at the node netns for probes and
streaming. The kubelet writes the CNI conflist from the Node's podCIDR. Every container
carries the shim's node label (the netns name), so teardown removes exactly this node's."""

from __future__ import annotations

import asyncio
import contextlib
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

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from tests.integration.apiserver.process import ApiserverProcess, free_port

REPO = Path(__file__).resolve().parents[3]
REFERENCE_PLUGINS = Path("/usr/lib/cni")
NODE_LABEL = "io.pinnace.cri.node"
ENV = dict(os.environ, PINNACE_LOG_FORMAT="json", PYTHONPATH=f"{REPO}:{REPO / 'protos'}:{REPO / 'cmd'}")


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=60)


@dataclass
class Node:
    docker: Any
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    kubelet_args: list[str] = field(default_factory=list)
    apiserver_args: list[str] = field(default_factory=list)
    # The Node API's security flags: plaintext by default (the older tests dial it directly);
    # tests of the apiserver's proxy pass TLS flags (test_node_proxy.py).
    node_api_args: list[str] = field(default_factory=lambda: ["--node-api-insecure"])
    # The Node's InternalIP, which the apiserver dials for the proxy: tests of the proxy use
    # 127.0.0.1 (the kubelet listens on loopback); the default is the pod bridge's gateway.
    node_ip: str = ""

    def __post_init__(self) -> None:
        self.name = f"pkl-{self.suffix}"
        self.netns = self.name
        self.bridge = f"pkl{self.suffix}"
        self.octet = 10 + int(self.suffix, 16) % 240
        self.pod_cidr = f"10.244.{self.octet}.0/24"
        self.gateway = f"10.244.{self.octet}.1"
        self.tmp = Path(tempfile.mkdtemp(prefix="pkl-"))
        self.conf_dir = self.tmp / "net.d"
        self.cache_dir = self.tmp / "cni-cache"
        self.ipam_dir = self.tmp / "ipam"
        self.root_dir = self.tmp / "kubelet"
        self.manifests = self.tmp / "manifests"
        self.socket = self.tmp / "cri.sock"
        self.node_api_port = free_port()
        self.manifests.mkdir()
        self.apiserver = ApiserverProcess(self.tmp, extra_args=list(self.apiserver_args))
        self.shim: subprocess.Popen[bytes] | None = None
        self.kubelet: subprocess.Popen[bytes] | None = None
        self.client: Client | None = None

    # ---------------------------------------------------------------- lifecycle

    def create_netns(self) -> None:
        sh("ip", "netns", "add", self.netns)
        sh("ip", "-n", self.netns, "link", "set", "lo", "up")
        sh("ip", "-n", self.netns, "route", "add", "unreachable", "10.244.0.0/16")

    def start_shim(self) -> None:
        command = [
            "ip", "netns", "exec", self.netns, sys.executable, "-m", "pinnace_cmd.cri_docker",
            "--socket", str(self.socket), "--cni-conf-dir", str(self.conf_dir),
            "--cni-bin-dir", str(REFERENCE_PLUGINS), "--cni-cache-dir", str(self.cache_dir),
            "--node-name", self.name, "--streaming-address", "127.0.0.1:0",
        ]  # fmt: skip
        with (self.tmp / "shim.log").open("ab") as log:
            self.shim = subprocess.Popen(command, stdout=log, stderr=log, env=ENV)
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self.shim.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"shim did not start: {(self.tmp / 'shim.log').read_text()[-2000:]}")
            time.sleep(0.1)

    def stop_shim(self, sig: int = signal.SIGTERM) -> None:
        if self.shim is not None and self.shim.poll() is None:
            self.shim.send_signal(sig)
            try:
                self.shim.wait(15)
            except subprocess.TimeoutExpired:
                self.shim.kill()
                self.shim.wait(5)
        self.shim = None
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()

    def start_kubelet(self, *extra: str) -> None:
        command = [
            sys.executable, "-m", "pinnace_cmd.kubelet",
            "--node-name", self.name, "--apiserver", self.apiserver.address,
            "--container-runtime-endpoint", str(self.socket), "--root-dir", str(self.root_dir),
            "--pod-manifest-path", str(self.manifests),
            "--network-namespace", f"/var/run/netns/{self.netns}",
            "--cni-conf-dir", str(self.conf_dir), "--cni-bin-dir", str(REFERENCE_PLUGINS),
            "--cni-data-dir", str(self.ipam_dir), "--cni-bridge", self.bridge,
            "--node-ip", self.node_ip or self.gateway,
            "--node-api-listen", f"127.0.0.1:{self.node_api_port}", *self.node_api_args,
            "--sync-frequency", "5s", "--node-status-update-frequency", "2s",
            "--container-restart-backoff", "1s",
            *self.kubelet_args, *extra,
        ]  # fmt: skip
        with (self.tmp / "kubelet.log").open("ab") as log:
            self.kubelet = subprocess.Popen(command, stdout=log, stderr=log, env=ENV)

    def stop_kubelet(self, sig: int = signal.SIGTERM) -> None:
        if self.kubelet is not None and self.kubelet.poll() is None:
            self.kubelet.send_signal(sig)
            try:
                self.kubelet.wait(20)
            except subprocess.TimeoutExpired:
                self.kubelet.kill()
                self.kubelet.wait(5)
        self.kubelet = None

    async def start(self, *, precreate_node: bool = True, kubelet: bool = True) -> Client:
        self.create_netns()
        await self.apiserver.start(timeout=60)
        self.client = Client.connect(self.apiserver.address, timeout=20)
        if precreate_node:
            node = core_pb2.Node()
            node.metadata.name = self.name
            node.spec.pod_cidr = self.pod_cidr
            await self.client.create(node)
        self.start_shim()
        if kubelet:
            self.start_kubelet(*(() if not precreate_node else ("--register-node", "false")))
        return self.client

    async def destroy(self) -> None:
        self.stop_kubelet()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
        self.stop_shim()
        self.apiserver.stop()
        self.remove_containers()
        sh("ip", "netns", "del", self.netns, check=False)
        for line in sh("mount").stdout.splitlines():
            if str(self.tmp) in line:
                sh("umount", "-l", line.split(" on ")[1].split(" type ")[0], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def remove_containers(self) -> list[str]:
        removed = []
        for c in self.docker.api.containers(all=True, filters={"label": f"{NODE_LABEL}={self.name}"}):
            with contextlib.suppress(Exception):
                self.docker.api.remove_container(c["Id"], force=True)
                removed.append(c["Id"])
        return removed

    def containers(self, running_only: bool = True) -> list[dict[str, Any]]:
        return list(
            self.docker.api.containers(all=not running_only, filters={"label": f"{NODE_LABEL}={self.name}"})
        )

    def logs(self) -> str:
        parts = []
        for name in ("kubelet.log", "shim.log", "apiserver.log"):
            path = self.tmp / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text()[-6000:])
        return "\n".join(parts)

    # ---------------------------------------------------------------- helpers

    def pod(self, name: str, *containers: core_pb2.Container, **spec: Any) -> core_pb2.Pod:
        pod = core_pb2.Pod()
        pod.metadata.name, pod.metadata.namespace = name, "default"
        pod.spec.node_name = self.name
        pod.spec.termination_grace_period_seconds = spec.pop("grace", 2)
        for key, value in spec.items():
            setattr(pod.spec, key, value)
        pod.spec.containers.extend(containers)
        return pod

    async def wait_pod(
        self, name: str, predicate: Any, timeout: float = 60.0, namespace: str = "default"
    ) -> Any:
        assert self.client is not None
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                last = await self.client.get("pods", name, namespace)
                if predicate(last):
                    return last
            await asyncio.sleep(0.25)
        raise AssertionError(f"pod {name} did not reach the expected state; last: {last}\n{self.logs()}")

    async def wait_node(self, predicate: Any, timeout: float = 30.0) -> Any:
        assert self.client is not None
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                last = await self.client.get("nodes", self.name)
                if predicate(last):
                    return last
            await asyncio.sleep(0.25)
        raise AssertionError(f"node did not reach the expected state; last: {last}\n{self.logs()}")

    def ns_exec(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.netns, *args, check=check)


def container(
    name: str, *command: str, image: str = "pinnace/busybox:1.0", **fields: Any
) -> core_pb2.Container:
    c = core_pb2.Container(name=name, image=image, command=list(command), **fields)
    c.image_pull_policy = c.image_pull_policy or "IfNotPresent"
    return c


def running(pod: Any) -> bool:
    return (
        pod.status.phase == "Running"
        and all(s.state.HasField("running") for s in pod.status.container_statuses)
        and bool(pod.status.container_statuses)
    )


def condition(pod: Any, type_: str) -> str:
    return next((c.status for c in pod.status.conditions if c.type == type_), "")
