"""The guestbook's images on a real dockerd: pinnace/redis replicates for real, and
pinnace/guestbook stores messages through the master and reads them back from a replica.

The containers share one network namespace of their own (the master's, `--network none` plus
`container:` mode), so every address is its loopback: nothing leaves it. The same images in
real pods, wired by the example manifests, are the subject of tests/e2e.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from runtime_shims.docker.local_images import GUESTBOOK_IMAGE, REDIS_IMAGE, ensure_images

pytestmark = pytest.mark.integration

MESSAGE = 'hello, "world" \\ 1+1=2 ünïcode'


@pytest.fixture(scope="module")
def images(docker_client: Any) -> Any:
    ensure_images(docker_client)
    return docker_client


@pytest.fixture
def run(images: Any) -> Iterator[Any]:
    created: list[Any] = []

    def start(image: str, command: list[str] | None = None, **kwargs: Any) -> Any:
        network = f"container:{created[0].id}" if created else "none"
        container = images.containers.run(
            image,
            command,
            detach=True,
            network_mode=network,
            name=f"pinnace-test-{uuid.uuid4().hex[:8]}",
            **kwargs,
        )
        created.append(container)
        return container

    yield start
    for container in reversed(created):
        container.remove(force=True)


def until(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: last {last!r}")


def redis_cli(container: Any, *args: str) -> str:
    code, output = container.exec_run(["redis-cli", *args])
    assert code == 0, output
    return str(output.decode()).rstrip("\n")


def http_get(container: Any, port: int, path: str) -> tuple[int, dict[str, Any]]:
    """GET over a raw socket with busybox nc, so error statuses keep their bodies."""
    script = 'printf "GET %s HTTP/1.0\\r\\nHost: guestbook\\r\\n\\r\\n" "$1" | nc 127.0.0.1 "$2"'
    code, output = container.exec_run(["sh", "-c", script, "sh", path, str(port)])
    assert code == 0, output
    head, _, body = output.decode().partition("\r\n\r\n")
    status = int(head.split()[1])
    assert "Content-Type: application/json" in head, head
    return status, json.loads(body)


def guestbook(container: Any, port: int, **query: str) -> tuple[int, dict[str, Any]]:
    return http_get(container, port, "/guestbook.cgi?" + urllib.parse.urlencode(query))


def start_redis_pair(run: Any) -> tuple[Any, Any]:
    master = run(REDIS_IMAGE)
    replica = run(
        REDIS_IMAGE,
        ["redis-server", "/etc/redis/redis.conf", "--port", "6380", "--replicaof", "127.0.0.1", "6379"],
    )
    until(
        lambda: "master_link_status:up" in redis_cli(replica, "-p", "6380", "INFO", "replication"),
        "replica never synced with the master",
    )
    return master, replica


def test_redis_replicates_and_the_replica_is_read_only(run: Any) -> None:
    master, replica = start_redis_pair(run)
    assert redis_cli(master, "SET", "greeting", "hello") == "OK"
    until(lambda: redis_cli(replica, "-p", "6380", "GET", "greeting") == "hello", "write not replicated")
    info = redis_cli(replica, "-p", "6380", "INFO", "replication")
    assert "role:slave" in info and "master_host:127.0.0.1" in info
    assert "READONLY" in redis_cli(replica, "-p", "6380", "SET", "greeting", "bye")
    assert redis_cli(master, "INFO", "server").count("redis_version:7.") == 1


def test_frontend_writes_to_the_master_and_reads_from_the_slave(run: Any) -> None:
    master, replica = start_redis_pair(run)
    env = {
        "GET_HOSTS_FROM": "env",
        "REDIS_MASTER_SERVICE_HOST": "127.0.0.1",
        "REDIS_MASTER_SERVICE_PORT": "6379",
        "REDIS_SLAVE_SERVICE_HOST": "127.0.0.1",
        "REDIS_SLAVE_SERVICE_PORT": "6380",
    }
    frontend = run(GUESTBOOK_IMAGE, environment=env)
    page = until(lambda: frontend.exec_run(["wget", "-qO-", "http://127.0.0.1:80/"]), "page not served")
    assert page.exit_code == 0 and b"<title>Guestbook</title>" in page.output

    assert guestbook(frontend, 80, cmd="set", key="messages", value=MESSAGE) == (200, {"message": "Updated"})
    assert redis_cli(master, "GET", "messages") == MESSAGE
    until(
        lambda: guestbook(frontend, 80, cmd="get", key="messages") == (200, {"data": MESSAGE}),
        "not read back",
    )

    # Reads go to the slave's address: detach the replica and give it a value of its own.
    assert redis_cli(replica, "-p", "6380", "REPLICAOF", "NO", "ONE") == "OK"
    assert redis_cli(replica, "-p", "6380", "SET", "messages", "only on the replica") == "OK"
    assert guestbook(frontend, 80, cmd="get", key="messages") == (200, {"data": "only on the replica"})
    assert guestbook(frontend, 80, cmd="get", key="absent") == (200, {"data": ""})


def test_frontend_answers_errors_clearly_and_changes_nothing(run: Any) -> None:
    master = run(REDIS_IMAGE)
    until(lambda: redis_cli(master, "PING") == "PONG", "redis-master not up")
    frontend = run(
        GUESTBOOK_IMAGE,
        ["guestbook", "8080"],
        environment={"GET_HOSTS_FROM": "env", "REDIS_MASTER_SERVICE_HOST": "127.0.0.1"},
    )
    until(lambda: frontend.exec_run(["wget", "-qO-", "http://127.0.0.1:8080/"]).exit_code == 0, "not serving")

    assert guestbook(frontend, 8080, cmd="delete", key="messages") == (
        400,
        {"error": "cmd must be set or get"},
    )
    assert guestbook(frontend, 8080, cmd="set", value="x") == (400, {"error": "key is required"})
    status, body = guestbook(frontend, 8080, cmd="get", key="messages")
    assert status == 503
    assert body == {"error": "no address for redis-slave: create its Service before the frontend's pods"}
    assert redis_cli(master, "DBSIZE") == "0"

    unreachable = run(
        GUESTBOOK_IMAGE,
        ["guestbook", "8081"],
        environment={
            "GET_HOSTS_FROM": "env",
            "REDIS_MASTER_SERVICE_HOST": "127.0.0.1",
            "REDIS_MASTER_SERVICE_PORT": "6390",
        },
    )
    until(
        lambda: unreachable.exec_run(["wget", "-qO-", "http://127.0.0.1:8081/"]).exit_code == 0, "not serving"
    )
    status, body = guestbook(unreachable, 8081, cmd="set", key="messages", value="lost")
    assert status == 503
    assert body["error"].startswith("redis-master at 127.0.0.1:6390: Could not connect to Redis")
    assert redis_cli(master, "DBSIZE") == "0"
