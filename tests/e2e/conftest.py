"""The e2e tier's lab: one cluster (a master running the control plane as three processes, two
nodes and a client host) for the whole session, removed whatever happens (docs/e2e.md).

Outside CI a machine that cannot run a lab skips the tier; with PINNACE_REQUIRE_INTEGRATION=1
(`make test`) it fails instead, as in tests/integration."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from services.lab import Lab, destroy
from tests.integration.conftest import missing

NAME = "e2e"
# A silent node is NotReady after 8 s (Kubernetes: 40 s), so the node-failure test is bounded.
NODE_MONITOR_GRACE = "8s"


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        missing("the lab needs root")
    if shutil.which("dockerd") is None:
        missing("docker.io is not installed")
    destroy(NAME)  # what a killed earlier run left behind
    built = Lab.up(
        nodes=2,
        name=NAME,
        split_control_plane=True,
        controller_manager_args=["--node-monitor-grace-period", NODE_MONITOR_GRACE],
        timeout=240,
    )
    try:
        yield built
    finally:
        built.down()
