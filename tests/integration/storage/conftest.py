"""The storage backends under test. Every test in this folder runs against each backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from services.apiserver.storage.etcd import EtcdStorage
from services.apiserver.storage.interface import Storage
from services.apiserver.storage.sqlite import SQLiteStorage
from tests.integration.etcd_cluster import require_etcd, start_etcd


@pytest.fixture(scope="session")
def etcd_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """One real etcd for the session; tests share it, isolated by a key prefix each."""
    require_etcd()
    with start_etcd(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster.endpoints


def _etcd(request: pytest.FixtureRequest, tmp: Path) -> Storage:
    endpoints: list[str] = request.getfixturevalue("etcd_endpoints")
    return EtcdStorage(endpoints, prefix=f"/pinnace-test/{uuid.uuid4().hex}")


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Storage]] = {
    "sqlite": lambda request, tmp: SQLiteStorage(tmp / "state.db"),
    "etcd": _etcd,
}
# Backends that need an external program are integration tests (they skip without it).
_MARKS = {"etcd": [pytest.mark.integration]}


@pytest.fixture(params=[pytest.param(name, marks=_MARKS.get(name, [])) for name in sorted(BACKENDS)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    backend = BACKENDS[request.param](request, tmp_path)
    yield backend
    await backend.close()
