"""critest "container": lifecycle, status and reasons, list filters, mounts, env, working dir,
labels/annotations round trip, two containers sharing localhost and IPC, PID sharing."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from pinnace.cri.v1 import api_pb2 as cri
from tests.integration.cri.harness import (
    Lab,
    container_config,
    exec_sync,
    running_pod,
    sh,
    start_container,
    wait_for,
)

pytestmark = pytest.mark.integration


def status_of(lab: Lab, container_id: str) -> cri.ContainerStatus:
    status: cri.ContainerStatus = lab.runtime.ContainerStatus(
        cri.ContainerStatusRequest(container_id=container_id)
    ).status
    return status


def test_container_lifecycle(clean_lab: Lab) -> None:
    rt = clean_lab.runtime
    with running_pod(clean_lab, "clife") as (sandbox_id, pod):
        config = container_config("app", "sleep", "300")
        config.annotations["pcri/note"] = "kept verbatim"
        before = time.time_ns()
        container_id = rt.CreateContainer(
            cri.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=config, sandbox_config=pod)
        ).container_id
        status = status_of(clean_lab, container_id)
        assert status.state == cri.CONTAINER_CREATED
        assert status.created_at >= before
        assert status.started_at == 0
        rt.StartContainer(cri.StartContainerRequest(container_id=container_id))
        status = status_of(clean_lab, container_id)
        assert status.state == cri.CONTAINER_RUNNING
        assert status.started_at >= status.created_at
        assert status.image.image == "pinnace/busybox:1.0"
        assert status.image_ref.startswith("sha256:")
        assert status.metadata.name == "app"
        assert dict(status.labels) == dict(config.labels)
        assert status.annotations["pcri/note"] == "kept verbatim"
        assert status.log_path == f"{pod.log_directory}/app/0.log"

        started = time.monotonic()
        rt.StopContainer(cri.StopContainerRequest(container_id=container_id, timeout=1))
        assert time.monotonic() - started < 5
        status = status_of(clean_lab, container_id)
        assert status.state == cri.CONTAINER_EXITED
        assert status.finished_at >= status.started_at
        assert status.exit_code == 143, "SIGTERM ends sleep (PID 2 in the pod's PID namespace)"
        assert status.reason == "Error"
        rt.StopContainer(cri.StopContainerRequest(container_id=container_id, timeout=1))
        rt.RemoveContainer(cri.RemoveContainerRequest(container_id=container_id))
        rt.RemoveContainer(cri.RemoveContainerRequest(container_id=container_id))
        with pytest.raises(grpc.RpcError) as info:
            status_of(clean_lab, container_id)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as info:
            rt.StopContainer(cri.StopContainerRequest(container_id=container_id))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_stop_grace_then_sigkill(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "grace") as (sandbox_id, pod):
        script = "trap 'echo term' TERM; while true; do sleep 0.1; done"
        container_id = start_container(
            clean_lab, sandbox_id, pod, container_config("stubborn", "sh", "-c", script)
        )
        time.sleep(0.3)
        started = time.monotonic()
        clean_lab.runtime.StopContainer(cri.StopContainerRequest(container_id=container_id, timeout=2))
        elapsed = time.monotonic() - started
        assert 1.8 <= elapsed < 8, elapsed
        status = status_of(clean_lab, container_id)
        assert (status.state, status.exit_code) == (cri.CONTAINER_EXITED, 137)


def test_completed_and_error_reasons(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "reasons") as (sandbox_id, pod):
        ok = start_container(clean_lab, sandbox_id, pod, container_config("ok", "true"))
        bad = start_container(clean_lab, sandbox_id, pod, container_config("bad", "sh", "-c", "exit 3"))
        for container_id, code, reason in ((ok, 0, "Completed"), (bad, 3, "Error")):
            status = wait_for(
                lambda c=container_id: (s := status_of(clean_lab, c)).state == cri.CONTAINER_EXITED and s
            )
            assert status, "container did not exit"
            assert (status.exit_code, status.reason) == (code, reason)


def test_oom_killed_reason(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "oom") as (sandbox_id, pod):
        config = container_config("hog", "sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); sleep 5")
        config.linux.resources.memory_limit_in_bytes = 16 * 1024 * 1024
        container_id = start_container(clean_lab, sandbox_id, pod, config)
        status = wait_for(
            lambda: (s := status_of(clean_lab, container_id)).state == cri.CONTAINER_EXITED and s, 20
        )
        assert status and status.reason == "OOMKilled"


def test_list_containers_filters(clean_lab: Lab) -> None:
    rt = clean_lab.runtime
    with running_pod(clean_lab, "lc1") as (s1, p1), running_pod(clean_lab, "lc2") as (s2, p2):
        a = start_container(clean_lab, s1, p1, container_config("a", "sleep", "300"))
        b = rt.CreateContainer(
            cri.CreateContainerRequest(
                pod_sandbox_id=s2, config=container_config("b", "sleep", "300"), sandbox_config=p2
            )
        ).container_id

        def ids(flt: cri.ContainerFilter | None = None) -> set[str]:
            req = cri.ListContainersRequest(filter=flt) if flt is not None else cri.ListContainersRequest()
            return {c.id for c in rt.ListContainers(req).containers}

        assert ids() == {a, b}
        assert ids(cri.ContainerFilter(id=a)) == {a}
        assert ids(cri.ContainerFilter(id=b[:13])) == {b}
        assert ids(cri.ContainerFilter(pod_sandbox_id=s1)) == {a}
        assert ids(cri.ContainerFilter(state=cri.ContainerStateValue(state=cri.CONTAINER_CREATED))) == {b}
        assert ids(cri.ContainerFilter(state=cri.ContainerStateValue(state=cri.CONTAINER_RUNNING))) == {a}
        assert ids(cri.ContainerFilter(label_selector={"io.kubernetes.container.name": "b"})) == {b}
        item = next(c for c in rt.ListContainers(cri.ListContainersRequest()).containers if c.id == a)
        assert item.pod_sandbox_id == s1
        assert item.metadata.name == "a"
        assert item.image.image == "pinnace/busybox:1.0"
        assert item.created_at > 0


def test_env_workdir_and_mounts(clean_lab: Lab) -> None:
    host_dir = clean_lab.tmp / "volume"
    host_dir.mkdir(exist_ok=True)
    (host_dir / "data.txt").write_text("from the host")
    # rslave propagation needs a shared source mount: make our own temp dir one, for this test.
    sh("mount", "--bind", str(host_dir), str(host_dir))
    sh("mount", "--make-rshared", str(host_dir))
    try:
        _check_mounts(clean_lab, host_dir)
    finally:
        sh("umount", "-l", str(host_dir), check=False)


def _check_mounts(clean_lab: Lab, host_dir: Path) -> None:
    with running_pod(clean_lab, "mounts") as (sandbox_id, pod):
        config = container_config(
            "app",
            "sleep",
            "300",
            envs=[cri.KeyValue(key="GREETING", value=b"hello world")],
            working_dir="/tmp",
            mounts=[
                cri.Mount(container_path="/ro", host_path=str(host_dir), readonly=True),
                cri.Mount(
                    container_path="/rw",
                    host_path=str(host_dir),
                    propagation=cri.PROPAGATION_HOST_TO_CONTAINER,
                ),
            ],
        )
        app = start_container(clean_lab, sandbox_id, pod, config)
        assert exec_sync(clean_lab, app, "sh", "-c", "echo $GREETING").stdout == b"hello world\n"
        assert exec_sync(clean_lab, app, "pwd").stdout == b"/tmp\n"
        assert exec_sync(clean_lab, app, "cat", "/ro/data.txt").stdout == b"from the host"
        assert exec_sync(clean_lab, app, "touch", "/ro/x").exit_code != 0
        assert exec_sync(clean_lab, app, "touch", "/rw/written").exit_code == 0
        assert (host_dir / "written").exists()
        mounts = clean_lab.docker.api.inspect_container(app)["Mounts"]
        by_dest = {m["Destination"]: m for m in mounts}
        assert by_dest["/ro"]["RW"] is False
        assert by_dest["/rw"]["Propagation"] == "rslave"
        status = status_of(clean_lab, app)
        assert [(m.container_path, m.readonly) for m in status.mounts] == [("/ro", True), ("/rw", False)]


def test_two_containers_share_localhost_and_ipc(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "shared") as (sandbox_id, pod):
        server = start_container(
            clean_lab,
            sandbox_id,
            pod,
            container_config(
                "server", "serve", "8080", envs=[cri.KeyValue(key="MESSAGE", value=b"same-pod")]
            ),
        )
        client = start_container(clean_lab, sandbox_id, pod, container_config("client", "sleep", "300"))
        fetched = wait_for(
            lambda: exec_sync(clean_lab, client, "wget", "-qO-", "http://127.0.0.1:8080/").stdout, timeout=10
        )
        assert b"shared same-pod" in fetched
        assert exec_sync(clean_lab, server, "sh", "-c", "echo shm-data > /dev/shm/pcri").exit_code == 0
        assert exec_sync(clean_lab, client, "cat", "/dev/shm/pcri").stdout == b"shm-data\n"

        def ns(container_id: str, kind: str) -> str:
            return exec_sync(clean_lab, container_id, "readlink", f"/proc/self/ns/{kind}").stdout.decode()

        assert ns(server, "ipc") == ns(client, "ipc")
        assert ns(server, "net") == ns(client, "net")


def test_pid_namespace_sharing(clean_lab: Lab) -> None:
    shared = cri.LinuxPodSandboxConfig(
        security_context=cri.LinuxSandboxSecurityContext(namespace_options=cri.NamespaceOption(pid=cri.POD))
    )
    with running_pod(clean_lab, "pidshare", linux=shared) as (sandbox_id, pod):
        config = container_config("app", "sleep", "300")
        config.linux.security_context.namespace_options.pid = cri.POD
        app = start_container(clean_lab, sandbox_id, pod, config)
        assert b"pause" in exec_sync(clean_lab, app, "ps").stdout
    with running_pod(clean_lab, "pidprivate") as (sandbox_id, pod):
        config = container_config("app", "sleep", "300")
        config.linux.security_context.namespace_options.pid = cri.CONTAINER
        app = start_container(clean_lab, sandbox_id, pod, config)
        assert b"pause" not in exec_sync(clean_lab, app, "ps").stdout
