"""The lab through its command (`pinnace lab`): two nodes come up Ready, a pod on each node
answers the other across the lab LAN (host-gw routes), bad input changes nothing, and `down`
leaves no namespace, container or state behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.lab import Lab, LabError, destroy
from tests.integration.conftest import missing

NAME = "itlab"
PINNACE = [sys.executable, "-m", "pinnace_cmd.main"]
pytestmark = pytest.mark.integration


def pinnace(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PINNACE, *args], capture_output=True, text=True, timeout=timeout, check=False)


def lab_namespaces(name: str) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line.startswith(f"pl-{name}-")]


def lab_containers(name: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.pinnace.cri.node={name}-node1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return listed.split()


@pytest.fixture(scope="module")
def lab(docker_client: object) -> Iterator[Lab]:
    del docker_client  # root and a running dockerd are what the fixture checks
    if lab_namespaces(NAME):
        missing(f"a lab {NAME!r} is left from an earlier run: pinnace lab down --name {NAME}")
    try:
        done = pinnace("lab", "up", "--name", NAME, "--nodes", "2", "--timeout", "240")
        assert done.returncode == 0, done.stderr
        assert f"pinnace lab down --name {NAME}" in done.stdout
        yield Lab.load(NAME)
    finally:
        destroy(NAME)


def pod_manifest(name: str, node: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "web", "image": "pinnace/busybox:1.0", "command": ["serve", "8080"]}],
            },
        }
    )


def running_pod_ip(lab: Lab, name: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        pod = json.loads(lab.pinctl("get", "pod", name, "-o", "json").stdout)
        if pod.get("status", {}).get("phase") == "Running" and pod["status"].get("podIP"):
            return str(pod["status"]["podIP"])
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {name} not Running in {timeout} s: {pod.get('status')}")
        time.sleep(1)


def test_nodes_ready_and_pods_reach_each_other_across_nodes(lab: Lab) -> None:
    nodes = lab.pinctl("get", "nodes").stdout
    for host in lab.nodes:
        assert f"{host.node_name}   Ready" in nodes
    status = pinnace("lab", "status", "--name", NAME)
    assert status.returncode == 0 and all(
        c["alive"] for c in json.loads(status.stdout)["components"].values()
    )

    first, second = lab.nodes
    lab.pinctl("apply", "-f", "-", input=pod_manifest("web1", first.node_name))
    lab.pinctl("apply", "-f", "-", input=pod_manifest("web2", second.node_name))
    ip1, ip2 = running_pod_ip(lab, "web1"), running_pod_ip(lab, "web2")
    assert ip1 != ip2
    # From each node's namespace to the pod on the other node: the route is the other node's
    # LAN address (host-gw), never the default route.
    assert "web2" in lab.http_get(first.name, ip2, 8080)
    assert "web1" in lab.http_get(second.name, ip1, 8080)
    route = lab.exec(first.name, ["ip", "route", "get", ip2]).stdout
    assert f"via {second.ip}" in route
    exec_out = pinnace("lab", "exec", "--name", NAME, first.name, "--", "ip", "-o", "addr", "show", "eth0")
    assert exec_out.returncode == 0 and first.ip in exec_out.stdout


def test_bad_input_is_refused_and_changes_nothing(lab: Lab) -> None:
    before = sorted(lab_namespaces("itbad"))
    refused = pinnace("lab", "up", "--name", "itbad", "--nodes", "0")
    assert refused.returncode == 1 and "--master-agent" in refused.stderr
    again = pinnace("lab", "up", "--name", NAME)
    assert again.returncode == 1 and "already exists" in again.stderr
    missing_lab = pinnace("lab", "status", "--name", "itnone")
    assert missing_lab.returncode == 1 and "no lab 'itnone'" in missing_lab.stderr
    no_command = pinnace("lab", "exec", "--name", NAME, "client")
    assert no_command.returncode == 1 and "needs a command" in no_command.stderr
    with pytest.raises(LabError, match="no host"):
        lab.host("node9")
    assert sorted(lab_namespaces("itbad")) == before == []
    assert not Path("/var/lib/pinnace/labs/itbad").exists()


def test_down_removes_everything(lab: Lab) -> None:
    assert lab_containers(NAME), "the pods of the first test run on node1"
    pids = [p.pid for p in lab.state.processes.values()]
    done = pinnace("lab", "down", "--name", NAME)
    assert done.returncode == 0, done.stderr
    assert lab_namespaces(NAME) == []
    assert lab_containers(NAME) == []
    assert not lab.state_dir.exists()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "pinnace" not in Path(f"/proc/{pid}/cmdline").read_text()
