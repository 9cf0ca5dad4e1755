"""The backup and restore procedures of docs/operations.md, run as written against a real
apiserver: SQLite with `sqlite3 DB ".backup FILE"` while the apiserver runs, etcd with
`etcdctl snapshot save` and `etcdctl snapshot restore` (Debian 12's etcd-client is etcd 3.4:
it has no etcdutl). Each test writes an object before the backup and one after it; the
restored cluster must have the first and not the second."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinnace.api.core.v1 import core_pb2
from services.client import errors
from services.client.client import Client
from tests.integration.apiserver.process import ApiserverProcess
from tests.integration.conftest import missing
from tests.integration.etcd_cluster import ETCD_BINARY, free_ports, require_etcd, start_etcd

ETCDCTL = "/usr/bin/etcdctl"


def config_map(name: str) -> core_pb2.ConfigMap:
    cm = core_pb2.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = name, "default"
    cm.data["written"] = name
    return cm


async def check_restored(address: str) -> None:
    client = Client.connect(address, timeout=10)
    try:
        before = await client.get("configmaps", "before-backup", "default")
        assert before.data["written"] == "before-backup"
        with pytest.raises(errors.NotFoundError):
            await client.get("configmaps", "after-backup", "default")
        await client.create(config_map("after-restore"))  # and it takes writes again
    finally:
        await client.close()


@pytest.fixture
def apiservers() -> Iterator[list[ApiserverProcess]]:
    started: list[ApiserverProcess] = []
    yield started
    for process in started:
        process.stop()


async def test_sqlite_online_backup_and_restore(tmp_path: Path, apiservers: list[ApiserverProcess]) -> None:
    if shutil.which("sqlite3") is None:
        missing("sqlite3 is not installed (Debian package sqlite3)")
    live = tmp_path / "live"
    live.mkdir()
    api = ApiserverProcess(live)
    apiservers.append(api)
    await api.start()
    client = Client.connect(api.address, timeout=10)
    await client.create(config_map("before-backup"))
    backup = tmp_path / "state.db.backup"
    # While the apiserver runs and writes: the online backup API copies a consistent snapshot.
    subprocess.run(["sqlite3", str(live / "state.db"), f".backup '{backup}'"], check=True, timeout=60)
    await client.create(config_map("after-backup"))
    await client.close()
    api.stop()

    integrity = subprocess.run(
        ["sqlite3", str(backup), "PRAGMA integrity_check;"], capture_output=True, text=True, check=True
    )
    assert integrity.stdout.strip() == "ok"
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copyfile(backup, restored / "state.db")
    api2 = ApiserverProcess(restored)
    apiservers.append(api2)
    await api2.start()
    await check_restored(api2.address)


def etcdctl(*args: str, endpoint: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ETCDCTL_API": "3"}
    command = [ETCDCTL, *([f"--endpoints={endpoint}"] if endpoint else []), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60, env=env)


async def test_etcd_snapshot_save_and_restore(tmp_path: Path, apiservers: list[ApiserverProcess]) -> None:
    require_etcd()
    if not Path(ETCDCTL).is_file():
        missing(f"{ETCDCTL} is not installed (Debian package etcd-client)")
    snapshot = tmp_path / "etcd.snapshot"
    with start_etcd(tmp_path / "etcd") as cluster:
        endpoint = cluster.endpoints[0]
        api = ApiserverProcess(tmp_path, extra_args=["--storage", "etcd", "--etcd-servers", endpoint])
        apiservers.append(api)
        await api.start()
        client = Client.connect(api.address, timeout=10)
        await client.create(config_map("before-backup"))
        etcdctl("snapshot", "save", str(snapshot), endpoint=endpoint)
        await client.create(config_map("after-backup"))
        await client.close()
        api.stop()

    # The restore makes a new one-member cluster's data dir from the snapshot.
    client_port, peer_port = free_ports(2)
    data_dir = tmp_path / "restored.etcd"
    peer = f"http://127.0.0.1:{peer_port}"
    etcdctl(
        "snapshot", "restore", str(snapshot), f"--data-dir={data_dir}", "--name=restored",
        f"--initial-cluster=restored={peer}", f"--initial-advertise-peer-urls={peer}",
    )  # fmt: skip
    log = (tmp_path / "restored-etcd.log").open("wb")
    etcd = subprocess.Popen(
        [
            ETCD_BINARY, "--name=restored", f"--data-dir={data_dir}", f"--listen-peer-urls={peer}",
            f"--listen-client-urls=http://127.0.0.1:{client_port}",
            f"--advertise-client-urls=http://127.0.0.1:{client_port}",
        ],
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        endpoint = f"127.0.0.1:{client_port}"
        for _ in range(100):
            try:
                etcdctl("endpoint", "health", endpoint=endpoint)
                break
            except subprocess.CalledProcessError:
                assert etcd.poll() is None, (tmp_path / "restored-etcd.log").read_text()[-2000:]
                time.sleep(0.2)
        api2 = ApiserverProcess(tmp_path, extra_args=["--storage", "etcd", "--etcd-servers", endpoint])
        apiservers.append(api2)
        await api2.start()
        await check_restored(api2.address)
        api2.stop()
    finally:
        if etcd.poll() is None:
            os.kill(etcd.pid, signal.SIGTERM)
            try:
                etcd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(etcd.pid, signal.SIGKILL)
                etcd.wait(timeout=10)
        log.close()
