"""critest "resources" and "stats": Linux resources and the security context read back from
Docker, UpdateContainerResources, container and pod stats."""

from __future__ import annotations

import grpc
import pytest

from pinnace.cri.v1 import api_pb2 as cri
from tests.integration.cri.harness import Lab, container_config, exec_sync, running_pod, start_container

pytestmark = pytest.mark.integration


def test_resources_and_security_context_applied(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "res") as (sandbox_id, pod):
        config = container_config("app", "sleep", "300")
        res = config.linux.resources
        res.cpu_shares, res.cpu_quota, res.cpu_period = 512, 50000, 100000
        res.memory_limit_in_bytes, res.oom_score_adj = 64 * 1024 * 1024, 500
        sc = config.linux.security_context
        sc.run_as_user.value, sc.run_as_group.value = 1234, 5678
        sc.readonly_rootfs = True
        sc.no_new_privs = True
        sc.capabilities.add_capabilities.append("NET_ADMIN")
        sc.capabilities.drop_capabilities.append("CHOWN")
        app = start_container(clean_lab, sandbox_id, pod, config)
        host = clean_lab.docker.api.inspect_container(app)["HostConfig"]
        assert (host["CpuShares"], host["CpuQuota"], host["CpuPeriod"]) == (512, 50000, 100000)
        assert (host["Memory"], host["OomScoreAdj"]) == (64 * 1024 * 1024, 500)
        assert host["ReadonlyRootfs"] is True
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["CapAdd"] == ["CAP_NET_ADMIN"] and host["CapDrop"] == ["CAP_CHOWN"]
        assert exec_sync(clean_lab, app, "id", "-u").stdout.strip() == b"1234"
        assert exec_sync(clean_lab, app, "id", "-g").stdout.strip() == b"5678"
        assert exec_sync(clean_lab, app, "touch", "/x").exit_code != 0
        assert exec_sync(clean_lab, app, "cat", "/proc/self/oom_score_adj").stdout.strip() == b"500"
        status = clean_lab.runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=app)).status
        assert status.resources.linux.memory_limit_in_bytes == 64 * 1024 * 1024
        assert status.resources.linux.cpu_shares == 512
        assert status.user.linux.uid == 1234

        clean_lab.runtime.UpdateContainerResources(
            cri.UpdateContainerResourcesRequest(
                container_id=app,
                linux=cri.LinuxContainerResources(cpu_shares=256, memory_limit_in_bytes=128 * 1024 * 1024),
            )
        )
        host = clean_lab.docker.api.inspect_container(app)["HostConfig"]
        assert (host["CpuShares"], host["Memory"]) == (256, 128 * 1024 * 1024)


def test_privileged(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "priv") as (sandbox_id, pod):
        config = container_config("app", "sleep", "300")
        config.linux.security_context.privileged = True
        try:
            app = start_container(clean_lab, sandbox_id, pod, config)
        except grpc.RpcError as exc:
            if "unable to apply caps" not in (exc.details() or ""):
                raise
            pytest.skip("this machine's runc cannot start privileged containers (it lacks capabilities)")
        assert clean_lab.docker.api.inspect_container(app)["HostConfig"]["Privileged"] is True


def test_container_and_pod_stats(clean_lab: Lab) -> None:
    rt = clean_lab.runtime
    with running_pod(clean_lab, "stats") as (sandbox_id, pod):
        app = start_container(
            clean_lab,
            sandbox_id,
            pod,
            container_config(
                "app", "sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 300"
            ),
        )
        stats = rt.ContainerStats(cri.ContainerStatsRequest(container_id=app)).stats
        assert stats.attributes.id == app
        assert stats.attributes.metadata.name == "app"
        assert stats.cpu.usage_core_nano_seconds.value > 0
        assert stats.memory.working_set_bytes.value > 0
        assert stats.cpu.timestamp > 0
        listed = rt.ListContainerStats(
            cri.ListContainerStatsRequest(filter=cri.ContainerStatsFilter(pod_sandbox_id=sandbox_id))
        ).stats
        assert [s.attributes.id for s in listed] == [app]
        pod_stats = rt.PodSandboxStats(cri.PodSandboxStatsRequest(pod_sandbox_id=sandbox_id)).stats
        assert pod_stats.attributes.id == sandbox_id
        assert pod_stats.linux.cpu.usage_core_nano_seconds.value >= stats.cpu.usage_core_nano_seconds.value
        assert pod_stats.linux.memory.working_set_bytes.value > 0
        assert pod_stats.linux.network.default_interface.name == "eth0"
        assert [c.attributes.id for c in pod_stats.linux.containers] == [app]
        everything = rt.ListPodSandboxStats(cri.ListPodSandboxStatsRequest()).stats
        assert [s.attributes.id for s in everything] == [sandbox_id]
