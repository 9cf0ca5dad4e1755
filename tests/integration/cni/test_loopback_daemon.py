"""The loopback plugin, and the daemon path: fallback, namespace isolation of reused workers."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.integration.cni.conftest import Lab, RuntimeFactory, allocated, bridge_conflist, ns_name
from tests.integration.cni.harness import Attachment

pytestmark = pytest.mark.integration

LOOPBACK = {"cniVersion": "1.0.0", "name": "lo", "plugins": [{"type": "pinnace-loopback"}]}


@pytest.mark.parametrize("mode", ["daemon", "process"])
def test_loopback_add_check_del(lab: Lab, make_runtime: RuntimeFactory, mode: str) -> None:
    rt = make_runtime(mode)
    cont = lab.netns("lo")
    path = lab.path(cont)
    # the fixture brought lo up; start from a down loopback like a fresh sandbox
    lab.in_host("ip", "-n", cont, "link", "set", "lo", "down")
    att = Attachment("lo1", path)
    result = rt.add(LOOPBACK, att)
    assert result["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": path}]
    assert {"interface": 0, "address": "127.0.0.1/8"} in result["ips"]
    lo = lab.link("lo", cont)
    assert lo is not None and "UP" in lo["flags"]
    rt.check(LOOPBACK, att)
    rt.delete(LOOPBACK, att)
    lo = lab.link("lo", cont)
    assert lo is not None and "UP" not in lo["flags"]
    rt.delete(LOOPBACK, Attachment("lo1", "/run/netns/pcni-no-such-ns"))


def test_daemon_absent_falls_back_to_in_process(
    lab: Lab, make_runtime: RuntimeFactory, data_dir: str
) -> None:
    rt = make_runtime("daemon")
    rt.extra_env["PINNACE_CNI_SOCKET"] = "/run/pcni-no-daemon-here.sock"
    conflist = bridge_conflist(data_dir)
    att = Attachment("nodaemon", lab.container())
    assert rt.add(conflist, att)["ips"][0]["address"] == "10.77.0.2/24"
    rt.delete(conflist, att)
    assert allocated(data_dir) == []


def test_reused_workers_act_in_the_caller_namespace(
    lab: Lab, make_runtime: RuntimeFactory, data_dir: str
) -> None:
    """Calls from two host namespaces, interleaved, each land in their own namespace."""
    other = lab.netns("h2")
    rts = {lab.host: make_runtime("daemon"), other: make_runtime("daemon", host=other)}
    root_links_before = {li["ifname"] for li in json.loads(os.popen("ip -j link show").read())}
    for i in range(6):
        host = lab.host if i % 2 else other
        conflist = bridge_conflist(data_dir, name=f"iso{i % 2}", subnet=f"10.8{i % 2}.0.0/24")
        rts[host].add(conflist, Attachment(f"iso{i}", lab.container()))
    for host in (lab.host, other):
        assert len([li for li in lab.links(host) if li["ifname"].startswith("veth")]) == 3
    assert lab.addrs("cni0", lab.host) == ["10.81.0.1/24"]
    assert lab.addrs("cni0", other) == ["10.80.0.1/24"]
    root_links_after = {li["ifname"] for li in json.loads(os.popen("ip -j link show").read())}
    assert root_links_after == root_links_before


def test_daemon_socket_is_private(daemon_socket: str) -> None:
    mode = Path(daemon_socket).stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) & 0o077 == 0


def test_installed_executable_is_a_cni_plugin(bin_dir: str, lab: Lab) -> None:
    exe = Path(bin_dir) / "pinnace-host-local"
    assert os.access(exe, os.X_OK)
    assert "pinnace-cni-plugin: host-local" in exe.read_text()
    assert ns_name(lab.path(lab.host)) == lab.host
