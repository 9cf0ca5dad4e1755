"""Bad input and failures: precise gRPC codes and no leftovers (the clean_lab fixture checks
containers, veths, IP leases and CNI cache entries after every test)."""

from __future__ import annotations

import json

import grpc
import pytest

from pinnace.cri.v1 import api_pb2 as cri
from tests.integration.cri.harness import Lab, container_config, pod_config, running_pod

pytestmark = pytest.mark.integration


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value.code()


def test_cni_failure_undoes_everything(clean_lab: Lab) -> None:
    doc = json.loads((clean_lab.conf_dir / "10-pcri.conflist").read_text())
    good = json.dumps(doc)
    # The bridge succeeds (veth, IP lease), then a failing plugin breaks the chain.
    doc["plugins"].append({"type": "portmap", "capabilities": {"portMappings": True}, "snat": "not-a-bool"})
    (clean_lab.conf_dir / "10-pcri.conflist").write_text(json.dumps(doc))
    try:
        config = pod_config(clean_lab, "cnifail")
        ports = [cri.PortMapping(container_port=80, host_port=18081)]
        config.port_mappings.extend(ports)
        with pytest.raises(grpc.RpcError) as info:
            clean_lab.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=config))
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert "failed to set up network" in (info.value.details() or "")
        assert not clean_lab.runtime.ListPodSandbox(cri.ListPodSandboxRequest()).items
        assert not (clean_lab.log_root / f"pcri-test_cnifail_{config.metadata.uid}").exists()
    finally:
        (clean_lab.conf_dir / "10-pcri.conflist").write_text(good)


def test_missing_image(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "noimage") as (sandbox_id, pod):
        config = container_config("app", "true", image="pcri-missing/nothing:never")
        request = cri.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=config, sandbox_config=pod)
        assert code_of(lambda: clean_lab.runtime.CreateContainer(request)) == grpc.StatusCode.NOT_FOUND
        assert not clean_lab.runtime.ListContainers(cri.ListContainersRequest()).containers


@pytest.mark.parametrize(
    ("mutate", "what"),
    [
        (lambda c: c.mounts.append(cri.Mount(container_path="relative", host_path="/tmp")), "relative mount"),
        (lambda c: c.mounts.append(cri.Mount(container_path="/x", host_path="")), "empty host path"),
        (lambda c: setattr(c.linux.resources, "cpu_shares", 1), "cpu shares"),
        (lambda c: setattr(c.linux.resources, "memory_limit_in_bytes", 1024), "memory below 6 MiB"),
        (lambda c: setattr(c.linux.resources, "oom_score_adj", 5000), "oom score"),
        (lambda c: setattr(c.linux.resources, "cpu_quota", 10), "cpu quota"),
        (lambda c: c.labels.update({"io.pinnace.cri.type": "forged"}), "reserved label"),
        (lambda c: c.envs.append(cri.KeyValue(key="A=B", value=b"x")), "env key"),
    ],
)
def test_bad_container_input(clean_lab: Lab, mutate: object, what: str) -> None:
    with running_pod(clean_lab, "badinput") as (sandbox_id, pod):
        config = container_config("app", "sleep", "300")
        mutate(config)  # type: ignore[operator]
        request = cri.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=config, sandbox_config=pod)
        assert (
            code_of(lambda: clean_lab.runtime.CreateContainer(request)) == grpc.StatusCode.INVALID_ARGUMENT
        ), what
        assert not clean_lab.runtime.ListContainers(cri.ListContainersRequest()).containers


def test_unknown_ids(clean_lab: Lab) -> None:
    rt = clean_lab.runtime
    unknown = "e" * 64
    config = container_config("app", "true")
    assert (
        code_of(lambda: rt.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=unknown, config=config)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        code_of(lambda: rt.StartContainer(cri.StartContainerRequest(container_id=unknown)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        code_of(lambda: rt.ContainerStatus(cri.ContainerStatusRequest(container_id=unknown)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        code_of(lambda: rt.ContainerStats(cri.ContainerStatsRequest(container_id=unknown)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        code_of(lambda: rt.PodSandboxStats(cri.PodSandboxStatsRequest(pod_sandbox_id=unknown)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        code_of(lambda: rt.Exec(cri.ExecRequest(container_id=unknown, cmd=["sh"], stdout=True)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        code_of(lambda: rt.PortForward(cri.PortForwardRequest(pod_sandbox_id=unknown)))
        == grpc.StatusCode.NOT_FOUND
    )
    rt.RemoveContainer(cri.RemoveContainerRequest(container_id=unknown))


def test_bad_sandbox_input(clean_lab: Lab) -> None:
    rt = clean_lab.runtime
    no_name = pod_config(clean_lab, "x")
    no_name.metadata.name = ""
    assert (
        code_of(lambda: rt.RunPodSandbox(cri.RunPodSandboxRequest(config=no_name)))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    bad_port = pod_config(clean_lab, "badport", port_mappings=[cri.PortMapping(container_port=70000)])
    assert (
        code_of(lambda: rt.RunPodSandbox(cri.RunPodSandboxRequest(config=bad_port)))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert not rt.ListPodSandbox(cri.ListPodSandboxRequest()).items


def test_foreign_containers_are_invisible(clean_lab: Lab) -> None:
    """Another shim's (or anyone's) containers on the same dockerd are NOT_FOUND here."""
    foreign = clean_lab.docker.api.create_container(
        "pinnace/pause:1.0",
        labels={"io.pinnace.cri.type": "container", "io.pinnace.cri.node": clean_lab.node + "-other"},
    )["Id"]
    try:
        assert (
            code_of(
                lambda: clean_lab.runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=foreign))
            )
            == grpc.StatusCode.NOT_FOUND
        )
        assert foreign not in {
            c.id for c in clean_lab.runtime.ListContainers(cri.ListContainersRequest()).containers
        }
    finally:
        clean_lab.docker.api.remove_container(foreign, force=True)
