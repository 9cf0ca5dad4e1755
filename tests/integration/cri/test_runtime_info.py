"""critest "runtime info": Version, Status, UNIMPLEMENTED RPCs, reflection and health."""

from __future__ import annotations

import json
import shutil

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pinnace.cri.v1 import api_pb2 as cri
from tests.integration.cri.harness import Lab

pytestmark = pytest.mark.integration


def test_version(clean_lab: Lab) -> None:
    v = clean_lab.runtime.Version(cri.VersionRequest(version="0.1.0"))
    assert v.version == "0.1.0"
    assert v.runtime_name == "docker"
    assert v.runtime_version
    assert v.runtime_api_version == "v1"


def test_status_reports_runtime_and_network_ready(clean_lab: Lab) -> None:
    status = clean_lab.runtime.Status(cri.StatusRequest(verbose=True))
    conditions = {c.type: c for c in status.status.conditions}
    assert conditions["RuntimeReady"].status
    assert conditions["NetworkReady"].status
    assert json.loads(status.info["config"])["node"] == clean_lab.node


def test_network_not_ready_without_cni_config(clean_lab: Lab) -> None:
    saved = clean_lab.tmp / "saved.conflist"
    conf = clean_lab.conf_dir / "10-pcri.conflist"
    shutil.move(conf, saved)
    try:
        status = clean_lab.runtime.Status(cri.StatusRequest())
        network = next(c for c in status.status.conditions if c.type == "NetworkReady")
        assert not network.status
        assert network.reason == "NetworkPluginNotReady"
        assert str(clean_lab.conf_dir) in network.message
    finally:
        shutil.move(saved, conf)


def test_unimplemented_rpcs_answer_unimplemented(clean_lab: Lab) -> None:
    with pytest.raises(grpc.RpcError) as info:
        clean_lab.runtime.CheckpointContainer(cri.CheckpointContainerRequest(container_id="x"))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as info:
        clean_lab.runtime.ListMetricDescriptors(cri.ListMetricDescriptorsRequest())
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_runtime_config_and_update(clean_lab: Lab) -> None:
    config = clean_lab.runtime.RuntimeConfig(cri.RuntimeConfigRequest())
    assert config.linux.cgroup_driver in (cri.CGROUPFS, cri.SYSTEMD)
    clean_lab.runtime.UpdateRuntimeConfig(
        cri.UpdateRuntimeConfigRequest(
            runtime_config=cri.RuntimeConfig(network_config=cri.NetworkConfig(pod_cidr="10.244.7.0/24"))
        )
    )


def test_health_and_reflection(clean_lab: Lab) -> None:
    assert clean_lab.channel is not None
    health = health_pb2_grpc.HealthStub(clean_lab.channel)
    answer = health.Check(health_pb2.HealthCheckRequest(service="runtime.v1.RuntimeService"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(clean_lab.channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"runtime.v1.RuntimeService", "runtime.v1.ImageService"} <= names
