"""Fixtures for the CNI integration tests: namespaces, installed plugins, the daemon, a runtime.

Every test gets its own "host" netns (the plugins run inside it, so the bridge, host veths and
NAT chains live there) and as many container netns as it asks for; all are deleted afterwards,
also when the test fails. Nothing is created in the root namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cni_plugins.install import install
from tests.integration.cni.harness import CniRuntime

REPO = Path(__file__).resolve().parents[3]
REFERENCE_DIR = "/usr/lib/cni"
ICMP = Path(__file__).with_name("icmp.py")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None or shutil.which("nsenter") is None:
        return "needs iproute2 and nsenter"
    probe = f"pcni-probe-{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False).returncode != 0:
        return "ip netns is unavailable"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


@pytest.fixture(scope="session")
def netns_ok() -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=check).stdout


class Lab:
    """The namespaces of one test, torn down by the fixture."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.created: list[str] = []
        self.host = self.netns("h")

    def netns(self, role: str) -> str:
        name = f"pcni-{role}-{self.tag}-{len(self.created)}"
        sh("ip", "netns", "add", name)
        self.created.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def path(self, name: str) -> str:
        return f"/run/netns/{name}"

    def container(self) -> str:
        """A new container netns; its path."""
        return self.path(self.netns("c"))

    def in_host(self, *argv: str, check: bool = True) -> str:
        return sh("nsenter", f"--net={self.path(self.host)}", "--", *argv, check=check)

    def links(self, ns: str | None = None) -> list[dict[str, Any]]:
        out = sh("ip", "-n", ns or self.host, "-j", "-d", "link", "show")
        return list(json.loads(out or "[]"))

    def link(self, name: str, ns: str | None = None) -> dict[str, Any] | None:
        return next((li for li in self.links(ns) if li["ifname"] == name), None)

    def addrs(self, ifname: str, ns: str | None = None) -> list[str]:
        out = sh("ip", "-n", ns or self.host, "-j", "addr", "show", "dev", ifname, check=False)
        infos = json.loads(out or "[]")
        return sorted(
            f"{a['local']}/{a['prefixlen']}"
            for info in infos
            for a in info.get("addr_info", [])
            if a.get("scope") != "link"
        )

    def nat_rules(self, save_tool: str = "iptables-legacy-save") -> list[str]:
        out = self.in_host(save_tool, "-t", "nat", check=False)
        return [line for line in out.splitlines() if "CNI-" in line]

    def ping(self, *addresses: str, ns: str | None = None) -> set[str]:
        """Which of `addresses` answer an ICMP echo sent from netns `ns` (default: host)."""
        out = sh(
            "nsenter", f"--net={self.path(ns or self.host)}", "--", sys.executable, str(ICMP), *addresses
        )
        return set(out.split())

    def veths(self) -> list[str]:
        return [li["ifname"] for li in self.links() if li["ifname"].startswith("veth")]

    def teardown(self) -> None:
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture
def lab(netns_ok: None) -> Iterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        lab.teardown()


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `cond` until true or `timeout` (the kernel tears a netns down asynchronously)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def ns_name(path: str) -> str:
    return path.rsplit("/", 1)[1]


@pytest.fixture(scope="session")
def bin_dir(tmp_path_factory: pytest.TempPathFactory, netns_ok: None) -> str:
    target = tmp_path_factory.mktemp("pcni-bin")
    install(target)
    return str(target)


@pytest.fixture(scope="session")
def daemon_socket(tmp_path_factory: pytest.TempPathFactory, netns_ok: None) -> Iterator[str]:
    """A pinnace CNI daemon for the session (it lives in a private netns of its own)."""
    sock = str(tmp_path_factory.mktemp("pcni-daemon") / "cni.sock")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from cni_plugins.daemon import main; sys.exit(main(sys.argv[1:]))",
            "--socket",
            sock,
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while not Path(sock).exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("CNI daemon did not start")
            time.sleep(0.05)
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    path = tmp_path / "ipam"
    path.mkdir()
    return str(path)


RuntimeFactory = Callable[..., CniRuntime]


@pytest.fixture
def make_runtime(bin_dir: str, daemon_socket: str, lab: Lab) -> RuntimeFactory:
    """A runtime whose plugins run in the lab's host netns; mode 'daemon' or 'process'."""

    def make(mode: str = "daemon", host: str | None = None) -> CniRuntime:
        socket_path = daemon_socket if mode == "daemon" else ""
        return CniRuntime(
            bin_dirs=[bin_dir, REFERENCE_DIR],
            host_netns=lab.path(host or lab.host),
            extra_env={"PINNACE_CNI_SOCKET": socket_path},
        )

    return make


def bridge_conflist(
    data_dir: str,
    *,
    name: str = "pcnitest",
    subnet: str = "10.77.0.0/24",
    bridge_type: str = "pinnace-bridge",
    ipam_type: str = "pinnace-host-local",
    version: str = "1.0.0",
    extra: dict[str, Any] | None = None,
    ipam_extra: dict[str, Any] | None = None,
    more_plugins: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    plugin: dict[str, Any] = {
        "type": bridge_type,
        "bridge": "cni0",
        "isGateway": True,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {"type": ipam_type, "subnet": subnet, "dataDir": data_dir, "routes": [{"dst": "0.0.0.0/0"}]},
    }
    plugin.update(extra or {})
    plugin["ipam"].update(ipam_extra or {})
    return {"cniVersion": version, "name": name, "plugins": [plugin, *(more_plugins or [])]}


def allocated(data_dir: str, network: str = "pcnitest") -> list[str]:
    """IP files in a host-local store."""
    path = Path(data_dir) / network
    if not path.exists():
        return []
    return sorted(p.name for p in path.iterdir() if p.name[0].isdigit() and "last_reserved" not in p.name)
