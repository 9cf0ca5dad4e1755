"""`make up`'s cluster half (hack/demo.sh) does what the README says: a lab cluster comes up,
runs the guestbook, a message written through one node reads back through every node, and the
cluster is left running until `pinnace lab down` removes it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.lab import destroy
from tests.integration.lab.test_lab import lab_namespaces, pinnace

NAME = "itdemo"
DEMO = Path(__file__).resolve().parents[3] / "hack" / "demo.sh"
pytestmark = pytest.mark.integration


@pytest.fixture
def demo_lab(docker_client: object) -> Iterator[str]:
    del docker_client  # root and a running dockerd are what the fixture checks
    destroy(NAME)
    try:
        yield NAME
    finally:
        destroy(NAME)


def test_demo_brings_up_a_cluster_serving_the_guestbook(demo_lab: str) -> None:
    env = {**os.environ, "PINNACE_DEMO_LAB": demo_lab, "PINNACE_DEMO_NODES": "2"}
    done = subprocess.run(
        ["bash", str(DEMO)], check=False, capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reads = [line for line in done.stdout.splitlines() if line.startswith("demo: GET through node")]
    assert len(reads) == 2 and all("hello from the client" in line for line in reads), done.stdout
    assert "demo: OK" in done.stdout
    # Left running, as the README says, until it is taken down.
    status = pinnace("lab", "status", "--name", demo_lab)
    assert status.returncode == 0, status.stderr
    assert len(lab_namespaces(demo_lab)) == 5
    down = pinnace("lab", "down", "--name", demo_lab)
    assert down.returncode == 0, down.stderr
    assert lab_namespaces(demo_lab) == []
