"""The real pinnace-controller-manager program against the real apiserver program: two
managers elect one leader, the leader converges a ReplicaSet, and killing it (kill -9 in the
middle of its work) lets the standby finish without extra pods."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.client.client import Client
from services.controllers.podutil import is_active
from tests.integration.apiserver.process import ApiserverProcess
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.test_replicaset import RS

pytestmark = pytest.mark.integration


def start_manager(address: str, log: Path) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "pinnace_cmd.controller_manager",
        "--apiserver",
        address,
        "--controllers",
        "replicaset,garbagecollector",
        "--leader-elect-lease-duration",
        "2s",
        "--leader-elect-renew-deadline",
        "1.5s",
        "--leader-elect-retry-period",
        "0.2s",
    ]
    out = log.open("ab")
    return subprocess.Popen(args, stdout=out, stderr=out, env={**os.environ, "PINNACE_LOG_FORMAT": "json"})


async def wait_for(check, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.1)


async def test_leader_converges_and_standby_takes_over_after_kill(tmp_path: Path) -> None:
    apiserver = ApiserverProcess(tmp_path)
    await apiserver.start()
    managers: list[subprocess.Popen[bytes]] = []
    try:
        managers = [start_manager(apiserver.address, tmp_path / f"cm-{i}.log") for i in range(2)]
        async with Client.connect(apiserver.address) as client:

            async def count(n: int) -> bool:
                pods = (await client.list("pods", "default", label_selector="app=web")).items
                return sum(1 for p in pods if is_active(p)) == n

            await client.create(manifest(RS))
            await wait_for(lambda: count(3))
            lease = await client.get("leases", "kube-controller-manager", "kube-system")
            leader = lease.spec.holder_identity
            victim = next(m for m in managers if f"_{m.pid}_" in leader)
            await client.scale("replicasets", "web", 8, "default")
            victim.kill()
            victim.wait(10)
            await wait_for(lambda: count(8))
            await asyncio.sleep(1.0)
            assert await count(8)
    finally:
        for manager in managers:
            if manager.poll() is None:
                manager.terminate()
                manager.wait(10)
        apiserver.stop()
