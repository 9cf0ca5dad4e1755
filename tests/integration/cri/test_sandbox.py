"""critest "sandbox": lifecycle, status, list filters, hostname, DNS, sysctls, host network,
hostPort through the reference portmap plugin, idempotent stop/remove."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc
import pytest

from pinnace.cri.v1 import api_pb2 as cri
from tests.integration.cri.harness import (
    Lab,
    container_config,
    exec_sync,
    pod_config,
    running_pod,
    start_container,
)

pytestmark = pytest.mark.integration


def test_sandbox_lifecycle(clean_lab: Lab) -> None:
    rt = clean_lab.runtime
    before = time.time_ns()
    config = pod_config(clean_lab, "life")
    sandbox_id = rt.RunPodSandbox(cri.RunPodSandboxRequest(config=config)).pod_sandbox_id
    status = rt.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)).status
    assert status.state == cri.SANDBOX_READY
    assert status.metadata == config.metadata
    assert before <= status.created_at <= time.time_ns()
    assert dict(status.labels) == dict(config.labels)
    assert dict(status.annotations) == dict(config.annotations)
    assert status.network.ip.startswith(f"10.244.{clean_lab.octet}.")
    assert (clean_lab.log_root / f"pcri-test_life_{config.metadata.uid}").is_dir()

    rt.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
    status = rt.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)).status
    assert status.state == cri.SANDBOX_NOTREADY
    assert not status.network.ip
    rt.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
    rt.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
    rt.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
    rt.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
    with pytest.raises(grpc.RpcError) as info:
        rt.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_remove_without_stop_tears_everything_down(clean_lab: Lab) -> None:
    rt = clean_lab.runtime
    config = pod_config(clean_lab, "nostop")
    sandbox_id = rt.RunPodSandbox(cri.RunPodSandboxRequest(config=config)).pod_sandbox_id
    start_container(clean_lab, sandbox_id, config, container_config("app", "sleep", "300"))
    rt.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
    assert not rt.ListContainers(cri.ListContainersRequest()).containers


def test_list_filters(clean_lab: Lab) -> None:
    rt = clean_lab.runtime
    with running_pod(clean_lab, "lista") as (a, _), running_pod(clean_lab, "listb") as (b, _):
        rt.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=b))
        everything = {s.id for s in rt.ListPodSandbox(cri.ListPodSandboxRequest()).items}
        assert everything == {a, b}

        def ids(flt: cri.PodSandboxFilter) -> set[str]:
            return {s.id for s in rt.ListPodSandbox(cri.ListPodSandboxRequest(filter=flt)).items}

        assert ids(cri.PodSandboxFilter(id=a)) == {a}
        assert ids(cri.PodSandboxFilter(id=a[:12])) == {a}
        assert ids(cri.PodSandboxFilter(state=cri.PodSandboxStateValue(state=cri.SANDBOX_READY))) == {a}
        assert ids(cri.PodSandboxFilter(state=cri.PodSandboxStateValue(state=cri.SANDBOX_NOTREADY))) == {b}
        assert ids(cri.PodSandboxFilter(label_selector={"app": "listb"})) == {b}
        assert (
            ids(cri.PodSandboxFilter(label_selector={"app": "listb", "io.kubernetes.pod.name": "lista"}))
            == set()
        )
        item = next(s for s in rt.ListPodSandbox(cri.ListPodSandboxRequest()).items if s.id == a)
        assert item.metadata.name == "lista"
        assert item.created_at > 0
        assert item.annotations["pcri/annotation"] == "value with spaces = and :"


def test_hostname_dns_and_sysctls(clean_lab: Lab) -> None:
    dns = cri.DNSConfig(servers=["10.96.0.10"], searches=["pcri.svc.cluster.local"], options=["ndots:5"])
    linux = cri.LinuxPodSandboxConfig(sysctls={"net.ipv4.ip_unprivileged_port_start": "0"})
    with running_pod(clean_lab, "dnspod", dns_config=dns, linux=linux) as (sandbox_id, config):
        app = start_container(clean_lab, sandbox_id, config, container_config("app", "sleep", "300"))
        assert exec_sync(clean_lab, app, "hostname").stdout.strip() == b"dnspod"
        resolv = exec_sync(clean_lab, app, "cat", "/etc/resolv.conf").stdout.decode()
        assert "nameserver 10.96.0.10" in resolv
        assert "search pcri.svc.cluster.local" in resolv
        assert "options ndots:5" in resolv
        sysctl = exec_sync(clean_lab, app, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start").stdout
        assert sysctl.strip() == b"0"


def dockerd_pid() -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str((entry / "exe").readlink()).endswith("/dockerd"):
                    return int(entry.name)
            except OSError:
                continue
    raise AssertionError("no dockerd process")


def test_host_network_sandbox(clean_lab: Lab) -> None:
    linux = cri.LinuxPodSandboxConfig(
        security_context=cri.LinuxSandboxSecurityContext(
            namespace_options=cri.NamespaceOption(network=cri.NODE, pid=cri.CONTAINER)
        )
    )
    with running_pod(clean_lab, "hostnet", linux=linux) as (sandbox_id, config):
        status = clean_lab.runtime.PodSandboxStatus(
            cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)
        ).status
        assert status.state == cri.SANDBOX_READY
        assert status.linux.namespaces.options.network == cri.NODE
        app = start_container(clean_lab, sandbox_id, config, container_config("app", "sleep", "300"))
        pid = clean_lab.docker.api.inspect_container(app)["State"]["Pid"]
        # Docker's "host" is dockerd's namespace (see docs/cri.md, limits), not the shim's.
        assert Path(f"/proc/{pid}/ns/net").readlink() == Path(f"/proc/{dockerd_pid()}/ns/net").readlink()
    assert not (clean_lab.cache_dir / "results").exists() or not list(
        (clean_lab.cache_dir / "results").iterdir()
    )


def test_host_port_through_portmap(clean_lab: Lab) -> None:
    ports = [cri.PortMapping(protocol=cri.TCP, container_port=8080, host_port=18080)]
    with running_pod(clean_lab, "hostport", port_mappings=ports) as (sandbox_id, config):
        start_container(
            clean_lab,
            sandbox_id,
            config,
            container_config(
                "web", "serve", "8080", envs=[cri.KeyValue(key="MESSAGE", value=b"via-hostport")]
            ),
        )
        request = "GET / HTTP/1.0\r\n\r\n"
        script = (
            "import socket,sys,time\n"
            "for _ in range(50):\n"
            "  try:\n"
            f"    s=socket.create_connection(('{clean_lab.gateway}',18080),timeout=2); break\n"
            "  except OSError: time.sleep(0.1)\n"
            f"s.sendall({request!r}.encode())\n"
            "data=b''\n"
            "while chunk := s.recv(4096): data += chunk\n"
            "print(data.decode())\n"
        )
        out = clean_lab.ns_exec("python3", "-c", script).stdout
        assert "hostport via-hostport" in out
    rules = clean_lab.ns_exec("iptables-save", "-t", "nat", check=False).stdout
    assert "18080" not in rules, "portmap's DNAT rules must go with the sandbox"


def test_run_pod_sandbox_twice_gives_two_sandboxes(clean_lab: Lab) -> None:
    config = pod_config(clean_lab, "twice")
    rt = clean_lab.runtime
    first = rt.RunPodSandbox(cri.RunPodSandboxRequest(config=config)).pod_sandbox_id
    try:
        second = rt.RunPodSandbox(cri.RunPodSandboxRequest(config=config)).pod_sandbox_id
        assert second != first
        rt.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=second))
    finally:
        rt.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=first))


def test_unknown_sandbox(clean_lab: Lab) -> None:
    with pytest.raises(grpc.RpcError) as info:
        clean_lab.runtime.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id="f" * 64))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    clean_lab.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id="f" * 64))
    clean_lab.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id="f" * 64))


def test_gateway_is_reachable_only_in_lab(clean_lab: Lab) -> None:
    """Sanity of the lab itself: the bridge lives in the lab netns, never in the root one."""
    with running_pod(clean_lab, "sanity"):
        root_links = socket.if_nameindex()
        assert all(name != clean_lab.bridge for _, name in root_links)
