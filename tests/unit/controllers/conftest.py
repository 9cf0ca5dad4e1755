from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.client.client import Client
from tests.unit.apiserver.conftest import client, server
from tests.unit.controllers.fakes import FakeKubelet, Harness

__all__ = ["client", "server"]


@pytest.fixture
async def harness(client: Client) -> AsyncIterator[Harness]:
    h = Harness(client)
    yield h
    await h.stop()


@pytest.fixture
async def kubelet(client: Client) -> AsyncIterator[FakeKubelet]:
    fake = FakeKubelet(client)
    await fake.start()
    yield fake
    await fake.stop()
