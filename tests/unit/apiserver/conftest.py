"""An in-process apiserver on a temporary SQLite file, and a client connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.apiserver.server import APIServer, Config
from services.apiserver.service import APIService
from services.client.client import Client


def config_for(tmp_path: Path) -> Config:
    return Config(
        listen="127.0.0.1:0",
        sqlite_path=str(tmp_path / "state.db"),
        sqlite_synchronous="NORMAL",
        service_cidr="10.96.0.0/24",
        node_port_range=(30000, 30010),
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServer]:
    apiserver = APIServer(config_for(tmp_path))
    await apiserver.start()
    yield apiserver
    await apiserver.stop(grace=0)


@pytest.fixture
async def client(server: APIServer) -> AsyncIterator[Client]:
    api = Client.connect(f"127.0.0.1:{server.port}", timeout=10)
    yield api
    await api.close()


@asynccontextmanager
async def apiserver_without(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[APIServer]:
    """An apiserver from before the streaming RPC `method`: it answers UNIMPLEMENTED."""

    async def unimplemented(self: APIService, request: Any, context: Any) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
        yield  # pragma: no cover - an async generator, like the real handler

    monkeypatch.setattr(APIService, method, unimplemented)
    apiserver = APIServer(config_for(tmp_path))
    await apiserver.start()
    try:
        yield apiserver
    finally:
        await apiserver.stop(grace=0)
