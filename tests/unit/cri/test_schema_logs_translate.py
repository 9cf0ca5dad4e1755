"""Unit tier of the CRI shim: label schema round trips, the CRI log format, filters, and the
translation of CRI configs into Docker's create parameters (no root, no Docker)."""

from __future__ import annotations

import io
import json
import struct

import pytest

from pinnace.cri.v1 import api_pb2 as cri
from runtime_shims.docker import labels as schema
from runtime_shims.docker import logs, translate
from runtime_shims.docker.cni import Attachment, parse_network, pod_ips, port_mapping_capability
from runtime_shims.docker.errors import CRIError


def pod() -> cri.PodSandboxConfig:
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name="web", uid="u1", namespace="ns", attempt=3),
        log_directory="/var/log/pods/ns_web_u1",
        labels={"app": "web", "weird key/with.dots": "v=1;x"},
        annotations={"a": "multi\nline", "b": ""},
        port_mappings=[
            cri.PortMapping(container_port=80, host_port=8080),
            cri.PortMapping(container_port=81),
        ],
    )


def test_sandbox_labels_round_trip() -> None:
    labels = schema.sandbox_labels(pod(), node="n1", created_at=123, runtime_handler="")
    assert labels["app"] == "web", "user labels are also plain Docker labels, for label filters"
    record = schema.parse_sandbox("id1", labels)
    assert record.metadata == pod().metadata
    assert record.labels == dict(pod().labels)
    assert record.annotations == {"a": "multi\nline", "b": ""}
    assert record.created_at == 123
    assert record.namespaces == {"network": "POD", "pid": "POD", "ipc": "POD"}
    assert not record.host_network
    assert record.port_mappings[0]["host_port"] == 8080


def test_container_labels_round_trip() -> None:
    config = cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name="app", attempt=1),
        image=cri.ImageSpec(image="busybox"),
        labels={"x": "y"},
        mounts=[
            cri.Mount(
                container_path="/a", host_path="/b", readonly=True, propagation=cri.PROPAGATION_BIDIRECTIONAL
            )
        ],
    )
    config.linux.security_context.run_as_user.value = 7
    labels = schema.container_labels(config, node="n1", sandbox_id="s", created_at=5, log_path="/l/app/1.log")
    record = schema.parse_container("c", labels)
    assert (record.sandbox_id, record.metadata.name, record.metadata.attempt) == ("s", "app", 1)
    assert record.mount_messages() == list(config.mounts)
    assert record.user == {"uid": 7}
    assert record.log_path == "/l/app/1.log"


def test_reserved_prefix_is_rejected() -> None:
    with pytest.raises(CRIError):
        schema.check_user_labels({"io.pinnace.cri.node": "other"}, "labels")


def test_selector_filters() -> None:
    assert schema.selector_filters("n", "container", {"b": "2", "a": "1"}) == [
        "io.pinnace.cri.type=container",
        "io.pinnace.cri.node=n",
        "a=1",
        "b=2",
    ]


def test_cri_log_lines() -> None:
    assert logs.to_cri_lines("stdout", b"2024-01-02T03:04:05.123456789Z hello\n") == (
        b"2024-01-02T03:04:05.123456789Z stdout F hello\n"
    )
    assert (
        logs.to_cri_lines("stderr", b"2024-01-02T03:04:05.1Z part")
        == b"2024-01-02T03:04:05.1Z stderr P part\n"
    )
    assert logs.parse_line(b"2024-01-02T03:04:05.1Z stdout F a b c\n") == (
        "2024-01-02T03:04:05.1Z",
        "stdout",
        False,
        b"a b c",
    )
    assert logs.parse_line(b"2024-01-02T03:04:05.1Z stdout F \n")[3] == b""


def test_timestamps() -> None:
    assert logs.timestamp_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert logs.timestamp_ns("0001-01-01T00:00:00Z") == 0
    assert logs.timestamp_ns("1970-01-01T01:00:00.000000001+01:00") == 1
    assert logs.docker_since("1970-01-01T00:00:02.000000007Z") == "2.000000007"


def test_docker_frames_and_last_timestamp(tmp_path) -> None:
    raw = struct.pack(">BxxxI", 1, 3) + b"abc" + struct.pack(">BxxxI", 2, 2) + b"de"
    assert list(logs.frames(io.BytesIO(raw))) == [(1, b"abc"), (2, b"de")]
    path = tmp_path / "0.log"
    path.write_bytes(b"2024-01-01T00:00:00.1Z stdout F a\n2024-01-01T00:00:00.2Z stdout F b\n")
    assert logs.last_timestamp(path) == "2024-01-01T00:00:00.2Z"
    assert logs.last_timestamp(tmp_path / "missing") == ""


def test_sandbox_translation() -> None:
    config = pod()
    config.hostname = "web"
    config.dns_config.servers.append("10.96.0.10")
    config.linux.sysctls["net.core.somaxconn"] = "1024"
    body = translate.sandbox_create_body(config, "pinnace/pause:1.0", {"l": "v"})
    host = body["HostConfig"]
    assert (host["NetworkMode"], host["IpcMode"]) == ("none", "shareable")
    assert host["Dns"] == ["10.96.0.10"] and host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert body["Hostname"] == "web"
    config.linux.security_context.namespace_options.network = cri.NODE
    assert translate.sandbox_create_body(config, "p", {})["HostConfig"]["NetworkMode"] == "host"
    assert "Hostname" not in translate.sandbox_create_body(config, "p", {})


def test_container_translation() -> None:
    config = cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name="app"),
        image=cri.ImageSpec(image="busybox"),
        command=["sleep"],
        envs=[cri.KeyValue(key="K", value=b"v=1")],
        mounts=[
            cri.Mount(
                container_path="/a",
                host_path="/b",
                readonly=True,
                propagation=cri.PROPAGATION_HOST_TO_CONTAINER,
            )
        ],
    )
    res = config.linux.resources
    res.cpu_shares, res.cpu_quota, res.cpu_period, res.memory_limit_in_bytes, res.oom_score_adj = (
        2,
        1000,
        100000,
        1 << 23,
        10,
    )
    sc = config.linux.security_context
    sc.run_as_user.value, sc.run_as_group.value = 1, 2
    sc.capabilities.add_capabilities.append("net_admin")
    sc.capabilities.drop_capabilities.append("ALL")
    sc.no_new_privs = True
    translate.validate_container(config)
    body = translate.container_create_body(
        config,
        sandbox_id="S",
        sandbox_modes={"network": "POD", "ipc": "POD", "pid": "CONTAINER"},
        cgroup_parent="",
        labels={},
    )
    host = body["HostConfig"]
    assert (host["NetworkMode"], host["IpcMode"]) == ("container:S", "container:S")
    assert "PidMode" not in host
    assert host["Binds"] == ["/b:/a:ro,rslave"]
    assert (host["CpuShares"], host["CpuQuota"], host["Memory"], host["MemorySwap"]) == (
        2,
        1000,
        1 << 23,
        1 << 23,
    )
    assert host["CapAdd"] == ["CAP_NET_ADMIN"] and host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert body["Entrypoint"] == ["sleep"] and body["Cmd"] is None
    assert body["Env"] == ["K=v=1"] and body["User"] == "1:2"
    config.linux.security_context.namespace_options.pid = cri.POD
    assert (
        translate.container_create_body(
            config, sandbox_id="S", sandbox_modes={}, cgroup_parent="", labels={}
        )["HostConfig"]["PidMode"]
        == "container:S"
    )


@pytest.mark.parametrize(
    "field_values",
    [{"cpu_shares": 1}, {"cpu_period": 10}, {"cpu_quota": 5}, {"memory_limit_in_bytes": -1},
     {"memory_limit_in_bytes": 100}, {"oom_score_adj": -1001}, {"cpuset_cpus": "a-b"}],
)  # fmt: skip
def test_bad_resources(field_values: dict[str, object]) -> None:
    with pytest.raises(CRIError) as info:
        translate.validate_resources(cri.LinuxContainerResources(**field_values), "linux")  # type: ignore[arg-type]
    assert info.value.code.name == "INVALID_ARGUMENT"


def test_docker_names_and_signals() -> None:
    assert translate.docker_name("k8s_app_web_ns_u:1_0") == "k8s_app_web_ns_u-1_0"
    assert translate.signal_name(cri.SIGNAL_SIGTERM) == "SIGTERM"
    assert translate.signal_name(cri.SIGNAL_SIGRTMINPLUS1) == "SIGRTMIN+1"


def test_cni_helpers(tmp_path) -> None:
    net = parse_network(json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "bridge"}).encode(), tmp_path)
    assert net.plugins[0]["type"] == "bridge"
    result = {
        "interfaces": [{"name": "cni0"}, {"name": "veth"}, {"name": "eth0", "sandbox": "/proc/1/ns/net"}],
        "ips": [{"address": "fd00::2/64", "interface": 2}, {"address": "10.244.1.5/24", "interface": 2}],
    }
    assert pod_ips(result) == ["10.244.1.5", "fd00::2"]
    assert port_mapping_capability(
        [{"host_port": 0, "container_port": 1}, {"host_port": 80, "container_port": 8080, "protocol": "UDP"}]
    ) == [{"hostPort": 80, "containerPort": 8080, "protocol": "udp"}]
    args = dict(Attachment(container_id="c", netns="", pod_namespace="ns", pod_name="p").cni_args())
    assert args["K8S_POD_INFRA_CONTAINER_ID"] == "c" and args["K8S_POD_NAMESPACE"] == "ns"
