"""The local images on a real dockerd: idempotent build, pause semantics, busybox's server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime_shims.docker.local_images import (
    BUSYBOX_IMAGE,
    GUESTBOOK_IMAGE,
    PAUSE_IMAGE,
    REDIS_IMAGE,
    ensure_images,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def images(docker_client: Any) -> Any:
    ensure_images(docker_client)
    return docker_client


@pytest.fixture
def containers(images: Any) -> Iterator[list[Any]]:
    created: list[Any] = []
    yield created
    for container in created:
        container.remove(force=True)


def run(images: Any, created: list[Any], image: str, command: list[str] | None = None, **kwargs: Any) -> Any:
    container = images.containers.run(
        image,
        command,
        detach=True,
        network_mode="none",
        name=f"pinnace-test-{uuid.uuid4().hex[:8]}",
        **kwargs,
    )
    created.append(container)
    return container


def test_build_is_idempotent(images: Any) -> None:
    every = (PAUSE_IMAGE, BUSYBOX_IMAGE, REDIS_IMAGE, GUESTBOOK_IMAGE)
    assert ensure_images(images) == dict.fromkeys(every, False)
    for reference in every:
        assert images.images.get(reference)
        assert images.images.get(reference.replace(":1.0", ":latest"))


@pytest.mark.parametrize("signal", ["SIGTERM", "SIGINT"])
def test_pause_exits_cleanly_on_signal(images: Any, containers: list[Any], signal: str) -> None:
    pause = run(images, containers, PAUSE_IMAGE)
    pause.kill(signal=signal)
    result = pause.wait(timeout=10)
    # 0, not 137: pause handled the signal itself instead of being SIGKILLed.
    assert result["StatusCode"] == 0


def _zombie_children(pid: int) -> list[int]:
    zombies = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        state, ppid = fields[0], int(fields[1])
        if ppid == pid and state == "Z":
            zombies.append(int(stat.parent.name))
    return zombies


def test_pause_reaps_orphans(images: Any, containers: list[Any]) -> None:
    pause = run(images, containers, PAUSE_IMAGE)
    pause.reload()
    pid = pause.attrs["State"]["Pid"]
    # The shell exits at once; its background children are orphaned onto pause (PID 1).
    exit_code, _ = pause.exec_run(["sh", "-c", "sleep 0.2 & sleep 0.2 & sleep 0.2 & exit 0"])
    assert exit_code == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.5)
        children = [p for p in Path("/proc").glob("[0-9]*/stat") if p.exists()]
        if children and not _zombie_children(pid):
            break
    assert _zombie_children(pid) == []
    pause.reload()
    assert pause.status == "running"


def test_busybox_serves_hostname_and_message(images: Any, containers: list[Any]) -> None:
    server = run(
        images,
        containers,
        BUSYBOX_IMAGE,
        ["serve", "8080"],
        hostname="web-7",
        environment={"MESSAGE": "hello from v1"},
    )
    answer = b""
    for _ in range(50):
        code, answer = server.exec_run(["wget", "-qO-", "http://127.0.0.1:8080/"])
        if code == 0:
            break
        time.sleep(0.1)
    assert answer.decode().strip() == "web-7 hello from v1"


def test_busybox_has_the_tools_tests_use(images: Any, containers: list[Any]) -> None:
    box = run(images, containers, BUSYBOX_IMAGE, ["sleep", "60"])
    code, output = box.exec_run(["sh", "-c", "command -v nc wget sleep httpd ip && id -u"])
    assert code == 0, output
    assert output.decode().split()[-1] == "0"
