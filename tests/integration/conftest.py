"""Shared fixtures of the integration tier: root, a real dockerd, real namespaces.

Outside CI a missing prerequisite skips the test; with PINNACE_REQUIRE_INTEGRATION=1 (set by
`make test`, so by CI) it fails instead, so a broken setup can never pass as "skipped".
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

REQUIRED = os.environ.get("PINNACE_REQUIRE_INTEGRATION") == "1"


def missing(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"integration prerequisite missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    if os.geteuid() != 0:
        missing("needs root")
    if shutil.which("dockerd") is None:
        missing("docker.io is not installed")
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        missing(f"no dockerd answers: {exc}")
    yield client
    client.close()
