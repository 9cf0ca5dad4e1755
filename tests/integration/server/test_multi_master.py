"""Several `pinnace server` processes over one real three-member etcd cluster (multi-master).

The second server is set up as docs/operations.md says: the first server's CA, CA key and
service-account key are copied into the second's data dir before its first start, so it issues
its own serving certificate from the shared CA. Then: an object written through one apiserver
is read and watched through the other; exactly one scheduler and one controller-manager lead;
a pod on a Node (kept alive by a node Lease this test renews, as a kubelet would) is bound by
the leading scheduler; kill -9 of the server holding the scheduler Lease lets the other take it
over and bind a new pod, and a client given both addresses keeps working throughout. The time
from the kill to the new pod's binding is printed (run with -s): the fail-over figure of
docs/operations.md, with the default lease settings a user gets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.coordination.v1 import coordination_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace_cmd.server import CLUSTER_INFO_KEY
from services.apiserver.storage.etcd import EtcdStorage
from services.client.client import Client
from services.client.config import load
from services.client.errors import AlreadyExistsError, APIStatusError, ConflictError
from services.machinery import pki
from tests.integration.etcd_cluster import EtcdCluster, free_ports, require_etcd, start_etcd

pytestmark = pytest.mark.integration
ENV = {**os.environ, "PINNACE_LOG_FORMAT": "json"}
START_TIMEOUT = 90.0
# Default leases: 15 s duration, 2 s retry; the take-over needs the old lease to run out.
FAILOVER_TIMEOUT = 90.0
SHARED_PKI = ("ca.crt", "ca.key", "sa.key")
NODE = "mm-node"
# The name every server's certificate carries (--tls-san), checked by the client that names
# both addresses.
SHARED_NAME = "api.multimaster.test"


@dataclass
class ServerProcess:
    name: str
    data_dir: Path
    https_port: int
    token_port: int
    log: Path
    ip: str = "127.0.0.1"  # each server its own loopback address, as machines have their own
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.https_port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, etcd: EtcdCluster) -> None:
        command = [
            sys.executable, "-m", "pinnace_cmd.server",
            "--data-dir", str(self.data_dir),
            "--bind-address", self.ip, "--advertise-address", self.ip, "--node-ip", self.ip,
            "--https-port", str(self.https_port), "--token-port", str(self.token_port),
            "--datastore-endpoint", ",".join(f"etcd://{e}" for e in etcd.endpoints),
            "--tls-san", SHARED_NAME, "--write-kubeconfig", "", "--disable-agent",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=ENV
            )

    def stop(self) -> None:
        """SIGTERM by pid, SIGKILL after a grace; only the process this test started."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_events(self, event: str) -> list[dict[str, object]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            with suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("event") == event:
                    found.append(record)
        return found


async def wait_for(
    what: str, check: Callable[[], Awaitable[bool]], timeout: float, servers: list[ServerProcess]
) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except APIStatusError as exc:
            last = exc
        await asyncio.sleep(0.2)
    logs = "\n".join(f"--- {s.name}:\n{s.tail()}" for s in servers)
    raise AssertionError(f"{what}: not reached within {timeout}s (last error: {last!r})\n{logs}")


async def wait_serving(server: ServerProcess, servers: list[ServerProcess]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            raise AssertionError(f"{server.name} exited {server.process.returncode}:\n{server.tail()}")
        # node-token is written last, once the apiserver serves (Server.ensure_join_token).
        if (server.data_dir / "node-token").exists():
            try:
                async with load(server.data_dir / "admin.conf").client(timeout=3) as client:
                    await client.get("namespaces", "default")
                    return
            except Exception:  # not up yet: TLS, connection, or NotFound
                pass
        await asyncio.sleep(0.3)
    raise AssertionError(f"{server.name} not serving within {START_TIMEOUT}s:\n{server.tail()}")


def now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns() // 1000 * 1000)
    return stamp


async def heartbeat(client: Client, stop: asyncio.Event) -> None:
    """What a kubelet does for its node: renew kube-node-lease/NODE every 2 s."""
    while not stop.is_set():
        with suppress(APIStatusError):
            try:
                lease = await client.get("leases", NODE, "kube-node-lease")
                assert isinstance(lease, coordination_pb2.Lease)
                lease.spec.renew_time.CopyFrom(now())
                await client.update(lease)
            except APIStatusError as exc:
                if exc.reason != "NotFound":
                    raise
                lease = coordination_pb2.Lease()
                lease.metadata.name, lease.metadata.namespace = NODE, "kube-node-lease"
                lease.spec.holder_identity, lease.spec.lease_duration_seconds = NODE, 40
                lease.spec.renew_time.CopyFrom(now())
                await client.create(lease)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)


async def create_node(client: Client) -> None:
    """A Node as a kubelet registers it: capacity and a Ready condition in its status. The
    status write is retried on a conflict (node IPAM sets the podCIDR meanwhile)."""
    node = core_pb2.Node()
    node.metadata.name = NODE
    node.metadata.labels["kubernetes.io/hostname"] = NODE
    await client.create(node)
    for _ in range(10):
        current = await client.get("nodes", NODE)
        assert isinstance(current, core_pb2.Node)
        for key, value in {"cpu": "4", "memory": "8Gi", "pods": "110"}.items():
            current.status.capacity[key] = value
            current.status.allocatable[key] = value
        del current.status.conditions[:]
        ready = current.status.conditions.add(type="Ready", status="True", reason="KubeletReady")
        ready.last_heartbeat_time.CopyFrom(now())
        ready.last_transition_time.CopyFrom(now())
        try:
            await client.update_status(current)
            return
        except ConflictError:
            continue
    raise AssertionError("Node status kept conflicting")


def pod(name: str) -> core_pb2.Pod:
    created = core_pb2.Pod()
    created.metadata.name, created.metadata.namespace = name, "default"
    created.spec.containers.add(name="app", image="pinnace/pause:latest")
    return created


async def bound_node(client: Client, name: str) -> str:
    got = await client.get("pods", name, "default")
    assert isinstance(got, core_pb2.Pod)
    return got.spec.node_name


async def holder(client: Client, lease: str) -> str:
    got = await client.get("leases", lease, "kube-system")
    assert isinstance(got, coordination_pb2.Lease)
    return got.spec.holder_identity


def owner(identity: str, servers: list[ServerProcess]) -> ServerProcess | None:
    """Lease identities are HOSTNAME_PID_RANDOM; the scheduler runs inside the server's pid."""
    return next((s for s in servers if f"_{s.pid}_" in identity), None)


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    require_etcd()
    with start_etcd(tmp_path, members=3) as started:
        yield started


@pytest.fixture
def single_etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    require_etcd()
    with start_etcd(tmp_path, members=1) as started:
        yield started


@pytest.fixture
async def servers(tmp_path: Path, etcd: EtcdCluster) -> AsyncIterator[list[ServerProcess]]:
    ports = free_ports(4)
    started = [
        ServerProcess(
            name,
            tmp_path / name,
            ports[2 * i],
            ports[2 * i + 1],
            tmp_path / f"{name}.log",
            f"127.0.0.{i + 1}",
        )
        for i, name in enumerate(("server-a", "server-b"))
    ]
    first, second = started
    try:
        first.start(etcd)
        await wait_serving(first, started)
        # The documented setup of a further server: the shared PKI before its first start.
        (second.data_dir / "pki").mkdir(parents=True, mode=0o700)
        for name in SHARED_PKI:
            shutil.copy2(first.data_dir / "pki" / name, second.data_dir / "pki" / name)
        shutil.copy2(first.data_dir / "node-token", second.data_dir / "node-token")
        second.start(etcd)
        await wait_serving(second, started)
        yield started
    finally:
        for server in started:
            server.stop()
        for server in started:
            shutil.rmtree(server.data_dir, ignore_errors=True)


async def test_two_servers_share_etcd_and_fail_over(servers: list[ServerProcess]) -> None:
    a, b = servers
    ca = x509.load_pem_x509_certificate((a.data_dir / "pki" / "ca.crt").read_bytes())
    assert (b.data_dir / "pki" / "ca.crt").read_bytes() == (a.data_dir / "pki" / "ca.crt").read_bytes()
    serving = [
        x509.load_pem_x509_certificate((s.data_dir / "pki" / "apiserver.crt").read_bytes()) for s in servers
    ]
    assert serving[0].serial_number != serving[1].serial_number, "each server issues its own serving cert"
    for cert in serving:
        pki.verify_signed_by(ca, cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert SHARED_NAME in names.get_values_for_type(x509.DNSName)

    admin = load(a.data_dir / "admin.conf")
    through_a = admin.client(timeout=10)
    through_b = dataclasses.replace(admin, server=b.address).client(timeout=10)
    # One client, both addresses: gRPC's ipv4: resolver picks a live one (pick_first), and
    # each server's certificate is checked against the shared name (kubeconfig tls-server-name).
    both = dataclasses.replace(admin, server=f"ipv4:{a.address},{b.address}", tls_server_name=SHARED_NAME)
    through_both = both.client(timeout=10)
    stop = asyncio.Event()
    beat: asyncio.Task[None] | None = None
    try:
        # --- one store: a write through A is read, and watched, through B.
        listed = await through_b.list("configmaps", "default")
        watch = through_b.watch("configmaps", "default", resource_version=listed.resource_version)
        seen = asyncio.create_task(anext(watch))
        shared = core_pb2.ConfigMap(data={"written": "through-a"})
        shared.metadata.name, shared.metadata.namespace = "shared", "default"
        await through_a.create(shared)
        got = await through_b.get("configmaps", "shared", "default")
        assert isinstance(got, core_pb2.ConfigMap) and got.data["written"] == "through-a"
        event = await asyncio.wait_for(seen, 30)
        assert event.type == "ADDED" and event.obj.metadata.name == "shared"  # type: ignore[attr-defined]
        await watch.aclose()

        # --- one leader each for the scheduler and the controller-manager.
        async def leases_held() -> bool:
            ids = [await holder(through_both, n) for n in ("kube-scheduler", "kube-controller-manager")]
            return all(owner(i, servers) is not None for i in ids)

        await wait_for("both leases held", leases_held, 60, servers)
        await asyncio.sleep(5)  # a few retry periods: a second leader would have logged by now
        for lease in ("kube-system/kube-scheduler", "kube-system/kube-controller-manager"):
            leaders = [
                s.name for s in servers for e in s.log_events("became leader") if e.get("lease") == lease
            ]
            assert len(leaders) == 1, f"{lease}: leaders {leaders}"

        # --- a pod on a Node is bound by the leading scheduler.
        await create_node(through_both)
        beat = asyncio.create_task(heartbeat(through_both, stop))

        async def created(name: str) -> bool:
            # Retried: the default ServiceAccount may not exist yet, or the call hit the dead
            # server; a retry of a create that did land finds it there.
            with suppress(AlreadyExistsError):
                await through_both.create(pod(name))
            return True

        await wait_for("first pod created", lambda: created("before"), 60, servers)
        await wait_for("first pod bound", lambda: _is_bound(through_both, "before"), 60, servers)

        # --- both servers in the `kubernetes` Service's Endpoints (their apiserver Leases).
        await wait_for(
            "both servers in the kubernetes Endpoints",
            lambda: _kubernetes_endpoints_are(through_both, {a.ip, b.ip}),
            30,
            servers,
        )

        # --- kill -9 the server holding the scheduler lease.
        victim = owner(await holder(through_both, "kube-scheduler"), servers)
        assert victim is not None
        survivor = b if victim is a else a
        assert victim.process is not None
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        await wait_for("second pod created", lambda: created("after"), 30, servers)
        await wait_for(
            "second pod bound", lambda: _is_bound(through_both, "after"), FAILOVER_TIMEOUT, servers
        )
        failover = time.monotonic() - killed_at
        print(f"\nmulti-master fail-over: kill -9 of {victim.name} to a new pod bound: {failover:.1f} s")

        assert owner(await holder(through_both, "kube-scheduler"), servers) is survivor

        async def cm_on_survivor() -> bool:
            return owner(await holder(through_both, "kube-controller-manager"), servers) is survivor

        await wait_for("controller-manager lease on the survivor", cm_on_survivor, FAILOVER_TIMEOUT, servers)
        assert await bound_node(through_both, "before") == NODE
        # Its apiserver Lease ran out: the survivor dropped it from the Endpoints pods dial.
        await wait_for(
            "the killed server out of the kubernetes Endpoints",
            lambda: _kubernetes_endpoints_are(through_both, {survivor.ip}),
            60,
            servers,
        )
    finally:
        stop.set()
        if beat is not None:
            beat.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await beat
        for client in (through_a, through_b, through_both):
            await client.close()


async def _kubernetes_endpoints_are(client: Client, ips: set[str]) -> bool:
    endpoints = await client.get("endpoints", "kubernetes", "default")
    return {a.ip for s in endpoints.subsets for a in s.addresses} == ips  # type: ignore[attr-defined]


async def _is_bound(client: Client, name: str) -> bool:
    return await bound_node(client, name) == NODE


async def test_a_server_without_the_shared_ca_is_refused(tmp_path: Path, single_etcd: EtcdCluster) -> None:
    """The mistake the setup guards against: a further server started on an etcd that already
    holds a cluster, without the first server's CA. It must refuse, name the files to copy,
    and write nothing (a second CA would split the cluster's identity)."""
    store = EtcdStorage(single_etcd.endpoints)
    try:
        await store.create(CLUSTER_INFO_KEY, b"a cluster's kube-public/cluster-info")
    finally:
        await store.close()
    data_dir = tmp_path / "newcomer"
    https, token = free_ports(2)
    command = [
        sys.executable, "-m", "pinnace_cmd.server", "--data-dir", str(data_dir),
        "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--node-ip", "127.0.0.1",
        "--https-port", str(https), "--token-port", str(token),
        "--datastore-endpoint", f"etcd://{single_etcd.endpoints[0]}",
        "--write-kubeconfig", str(tmp_path / "admin.conf"), "--disable-agent",
    ]  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "already holds a cluster" in done.stderr
    assert "copy ca.crt, ca.key, sa.key" in done.stderr
    assert not data_dir.exists()
    assert not (tmp_path / "admin.conf").exists()
