"""Fixtures of the kube-proxy integration tests: the lab, a real apiserver, real proxies.

The apiserver runs on 127.0.0.1 in the root namespace; each pinnace-proxy runs as a real
program whose API client stays there while its rules and sockets live in its node namespace
(`--netns`). Before and after the module, the root namespace must hold no KUBE-* chain in
either backend. iptables mode runs on its default backend (nf_tables) unless a test asks for
legacy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.client.client import Client
from tests.integration.apiserver.process import ApiserverProcess, free_port
from tests.integration.conftest import missing
from tests.integration.proxy.lab import CLUSTER_CIDR, Lab, Node, root_kube_chains


def _missing_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    tools = ("iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore")
    tools += ("iptables-nft", "iptables-nft-save", "iptables-nft-restore")
    for tool in ("ip", *tools, "conntrack"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = f"ppx-probe-{uuid.uuid4().hex[:6]}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False).returncode != 0:
        return "ip netns is unavailable"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = _missing_reason()
    if reason:
        missing(reason)
    assert root_kube_chains() == [], "the root namespace already holds KUBE-* chains"
    built = Lab().build()
    try:
        yield built
    finally:
        built.teardown()
        assert root_kube_chains() == [], "KUBE-* chains leaked into the root namespace"


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory, lab: Lab) -> Iterator[ApiserverProcess]:
    server = ApiserverProcess(
        tmp_path_factory.mktemp("apiserver"),
        extra_args=["--service-cluster-ip-range", "10.96.0.0/12", "--sqlite-synchronous", "NORMAL"],
    )
    asyncio.run(server.start())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def api(apiserver: ApiserverProcess) -> AsyncIterator[Client]:
    client = Client.connect(apiserver.address, timeout=10)
    yield client
    await client.close()


@dataclass
class ProxyProcess:
    """pinnace-proxy for one lab node, run as an operator would run it."""

    apiserver: str
    mode: str
    node: Node
    netns_path: str
    log_dir: Path
    backend: str = "nft"
    healthz_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pinnace_cmd.proxy",
            "--apiserver",
            self.apiserver,
            "--proxy-mode",
            self.mode,
            "--iptables-backend",
            self.backend,
            "--node-name",
            self.node.name,
            "--node-ip",
            self.node.ip,
            "--cluster-cidr",
            CLUSTER_CIDR,
            "--min-sync-period",
            "0.1",
            "--netns",
            self.netns_path,
            "--healthz-listen",
            f"127.0.0.1:{self.healthz_port}",
            "--metrics-listen",
            f"127.0.0.1:{self.metrics_port}",
        ]

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"proxy-{self.node.name}-{self.mode}-{self.backend}.log"

    def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        env = {**os.environ, "PINNACE_LOG_FORMAT": "json", "PINNACE_LOG_LEVEL": "info"}
        self.process = subprocess.Popen(self.argv(), stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + timeout
        while self.get("/healthz")[0] != 200:
            if self.process.poll() is not None:
                raise RuntimeError(f"pinnace-proxy exited: {self.log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"pinnace-proxy not healthy: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)

    def get(self, path: str, port: int | None = None) -> tuple[int, str]:
        url = f"http://127.0.0.1:{port or self.healthz_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def metrics(self) -> str:
        return self.get("/metrics", self.metrics_port)[1]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def run_cleanup(netns_path: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pinnace_cmd.proxy", "--cleanup", "--netns", netns_path],
        capture_output=True,
        check=True,
        timeout=60,
    )
