"""critest-style "shim restart" and "image" checks: a shim killed in the middle comes back
managing everything its predecessor created (state lives in Docker labels and the CNI cache);
PullImage from a local Debian docker-registry on loopback, ImageStatus, RemoveImage."""

from __future__ import annotations

import contextlib
import io
import secrets
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pinnace.cri.v1 import api_pb2 as cri
from tests.integration.cri.harness import (
    Lab,
    container_config,
    exec_sync,
    running_pod,
    start_container,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_shim_restart_in_the_middle(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "restart") as (sandbox_id, pod):
        script = "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done"
        app = start_container(clean_lab, sandbox_id, pod, container_config("app", "sh", "-c", script))
        created = clean_lab.runtime.CreateContainer(
            cri.CreateContainerRequest(
                pod_sandbox_id=sandbox_id,
                config=container_config("later", "sleep", "300"),
                sandbox_config=pod,
            )
        ).container_id
        ip = clean_lab.runtime.PodSandboxStatus(
            cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)
        ).status.network.ip
        log_path = Path(pod.log_directory) / "app" / "0.log"
        assert wait_for(lambda: log_path.exists() and b"line3" in log_path.read_bytes())

        clean_lab.stop(signal.SIGKILL)
        time.sleep(1.0)
        clean_lab.start()

        rt = clean_lab.runtime
        assert [s.id for s in rt.ListPodSandbox(cri.ListPodSandboxRequest()).items] == [sandbox_id]
        status = rt.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)).status
        assert (status.state, status.network.ip) == (cri.SANDBOX_READY, ip)
        assert {c.id for c in rt.ListContainers(cri.ListContainersRequest()).containers} == {app, created}
        rt.StartContainer(cri.StartContainerRequest(container_id=created))
        assert exec_sync(clean_lab, created, "true").exit_code == 0
        size = len(log_path.read_bytes())
        assert wait_for(lambda: len(log_path.read_bytes()) > size + 50), "the log copier resumed"
        numbers = [int(line.rsplit(b"line", 1)[1]) for line in log_path.read_bytes().splitlines()]
        assert numbers == list(range(len(numbers))), "no line lost or duplicated across the restart"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
        f"{tmp_path / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        assert wait_for(lambda: _answers(port), 15), "docker-registry did not start"
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _unique_image(docker: object, repository: str) -> str:
    """A one-file image of our own (never one someone else uses: RemoveImage drops every tag)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        content = secrets.token_hex(16).encode()
        info = tarfile.TarInfo("pcri-marker")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    tag = secrets.token_hex(4)
    docker.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=tag)  # type: ignore[attr-defined]
    return f"{repository}:{tag}"


def test_pull_status_remove_from_local_registry(clean_lab: Lab, registry: str) -> None:
    docker = clean_lab.docker
    reference = _unique_image(docker, f"{registry}/pcri-test/marker")
    repository, tag = reference.rsplit(":", 1)
    try:
        for event in docker.api.push(repository, tag=tag, stream=True, decode=True):
            assert "error" not in event, event
        docker.api.remove_image(reference)
        images = clean_lab.images
        assert not images.ImageStatus(cri.ImageStatusRequest(image=cri.ImageSpec(image=reference))).HasField(
            "image"
        )

        image_ref = images.PullImage(cri.PullImageRequest(image=cri.ImageSpec(image=reference))).image_ref
        assert image_ref.startswith("sha256:")
        status = images.ImageStatus(cri.ImageStatusRequest(image=cri.ImageSpec(image=reference))).image
        assert status.id == image_ref
        assert reference in status.repo_tags
        assert any(d.startswith(f"{repository}@sha256:") for d in status.repo_digests)
        listed = images.ListImages(
            cri.ListImagesRequest(filter=cri.ImageFilter(image=cri.ImageSpec(image=reference)))
        )
        assert [i.id for i in listed.images] == [image_ref]
        assert image_ref in {i.id for i in images.ListImages(cri.ListImagesRequest()).images}

        images.RemoveImage(cri.RemoveImageRequest(image=cri.ImageSpec(image=reference)))
        images.RemoveImage(cri.RemoveImageRequest(image=cri.ImageSpec(image=reference)))
        assert not images.ImageStatus(cri.ImageStatusRequest(image=cri.ImageSpec(image=reference))).HasField(
            "image"
        )

        with pytest.raises(grpc.RpcError) as info:
            images.PullImage(
                cri.PullImageRequest(image=cri.ImageSpec(image=f"{registry}/pcri-test/absent:1"))
            )
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        with contextlib.suppress(Exception):
            docker.api.remove_image(reference, force=True)


def test_image_fs_info_and_pinned_pause(clean_lab: Lab) -> None:
    info = clean_lab.images.ImageFsInfo(cri.ImageFsInfoRequest())
    assert info.image_filesystems[0].fs_id.mountpoint
    assert info.image_filesystems[0].used_bytes.value > 0
    status = clean_lab.images.ImageStatus(
        cri.ImageStatusRequest(image=cri.ImageSpec(image="pinnace/pause:1.0"))
    )
    assert status.image.pinned
    assert "pinnace/pause:1.0" in status.image.repo_tags
