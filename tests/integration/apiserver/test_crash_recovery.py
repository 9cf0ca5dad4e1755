"""kill -9 the apiserver during a write burst: every acknowledged write survives, nothing is
half-written, and a watch resumed from its last resourceVersion loses and duplicates nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinnace.api.core.v1 import core_pb2
from services.client import errors
from services.client.client import Client
from tests.integration.apiserver.process import ApiserverProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def apiserver(tmp_path: Path) -> Iterator[ApiserverProcess]:
    process = ApiserverProcess(tmp_path)
    yield process
    process.stop()


def config_map(name: str) -> core_pb2.ConfigMap:
    cm = core_pb2.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = name, "default"
    cm.data["payload"] = name * 10
    return cm


async def test_kill_9_during_write_burst(apiserver: ApiserverProcess) -> None:
    await apiserver.start()
    client = Client.connect(apiserver.address, timeout=5)
    start_rv = (await client.list("configmaps", "default")).resource_version
    acknowledged: list[str] = []
    seen: dict[str, int] = {}
    last_rv = start_rv

    async def write() -> None:
        for i in range(100_000):
            try:
                await client.create(config_map(f"cm-{i:05d}"))
            except errors.APIStatusError:
                return
            acknowledged.append(f"cm-{i:05d}")

    async def watch(from_rv: str, until: int) -> None:
        nonlocal last_rv
        if len(seen) >= until:
            return
        async for event in client.watch("configmaps", "default", resource_version=from_rv):
            name = event.obj.metadata.name
            seen[name] = seen.get(name, 0) + 1
            last_rv = event.obj.metadata.resource_version
            if len(seen) >= until:
                return

    writer = asyncio.create_task(write())
    watcher = asyncio.create_task(watch(start_rv, 10**9))
    while len(acknowledged) < 150:
        await asyncio.sleep(0.02)
    apiserver.kill()
    await asyncio.wait_for(writer, 10)
    with pytest.raises(errors.APIStatusError):
        await asyncio.wait_for(watcher, 10)
    assert len(acknowledged) >= 150

    await apiserver.start()
    # The client's channel saw the server die and is in reconnect back-off: wait for it.
    await asyncio.wait_for(client.channel.channel_ready(), 20)
    stored = {cm.metadata.name for cm in (await client.list("configmaps", "default")).items}
    assert set(acknowledged) <= stored, "an acknowledged write was lost"
    for cm in (await client.list("configmaps", "default")).items:
        assert cm.data["payload"] == cm.metadata.name * 10, "half-written object"
    await asyncio.wait_for(watch(last_rv, len(stored)), 20)
    assert set(seen) == stored
    assert all(count == 1 for count in seen.values()), "a resumed watch repeated events"
    await client.close()
