"""The e2e tier's lab: one cluster (a master running the control plane as three processes, two
nodes and a client host) for the whole session, removed whatever happens (docs/e2e.md).

Outside CI a machine that cannot run a lab skips the tier; with PINNACE_REQUIRE_INTEGRATION=1
(`make test`) it fails instead, as in tests/integration."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.lab import Lab, destroy
from tests.integration.conftest import missing

NAME = "e2e"
# A silent node is NotReady after 8 s (Kubernetes: 40 s), so the node-failure test is bounded.
# The kubelets' Leases last as long, so they renew every 2 s (a quarter), as Kubernetes' renew
# every 10 s against its 40 s: a node misses three renewals before it looks silent.
NODE_MONITOR_GRACE_SECONDS = 8


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
        controller_manager_args=["--node-monitor-grace-period", f"{NODE_MONITOR_GRACE_SECONDS}s"],
        agent_args=[f"--kubelet-arg=--node-lease-duration-seconds={NODE_MONITOR_GRACE_SECONDS}"],
        timeout=240,
    )
    try:
        yield built
    finally:
        built.down()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """When an e2e test fails, its report carries the last lines of every lab component's log,
    so a CI failure can be read without the lab (which is removed at the end of the session).
    With PINNACE_E2E_LOGS=DIR the whole logs are also copied to DIR/<test name>/."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    labs = [value for value in getattr(item, "funcargs", {}).values() if isinstance(value, Lab)]
    for lab in labs[:1]:
        report.sections.append(("lab component logs (last 60 lines each)", lab.log_tails(60)))
        if target := os.environ.get("PINNACE_E2E_LOGS"):
            directory = Path(target) / item.name
            directory.mkdir(parents=True, exist_ok=True)
            for process in lab.state.processes.values():
                with contextlib.suppress(OSError):
                    shutil.copy(process.log, directory / f"{process.name}.log")
