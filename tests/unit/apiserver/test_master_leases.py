"""The `kubernetes` Endpoints follow the apiservers' Leases: a live one stays, one whose Lease
ran out (killed with -9, never renewed) leaves, this apiserver is always in."""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.coordination.v1 import coordination_pb2
from services.apiserver import master_leases
from services.apiserver.server import APIServer
from services.client.client import Client


def lease(holder: str, renewed: float, duration: int = master_leases.TTL_SECONDS) -> coordination_pb2.Lease:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(renewed * 1e9))
    made = coordination_pb2.Lease()
    made.spec.holder_identity = holder
    made.spec.lease_duration_seconds = duration
    made.spec.renew_time.CopyFrom(stamp)
    return made


def test_live_addresses_keeps_fresh_leases_only() -> None:
    now = 1_000.0
    leases = [
        lease("10.0.0.2:6444", now - 5),
        lease("10.0.0.1:6444", now - 14),
        lease("10.0.0.3:6444", now - 16),  # expired
        lease("no-port", now),  # not IP:PORT
        lease(":6444", now),
    ]
    assert master_leases.live_addresses(leases, now) == ["10.0.0.1", "10.0.0.2"]


def test_lease_name_is_stable_and_distinct() -> None:
    assert master_leases.lease_name("10.0.0.1", 6443) == master_leases.lease_name("10.0.0.1", 6443)
    assert master_leases.lease_name("10.0.0.1", 6443) != master_leases.lease_name("10.0.0.2", 6443)


async def _addresses(client: Client) -> list[str]:
    endpoints = await client.get("endpoints", "kubernetes", "default")
    return sorted(a.ip for s in endpoints.subsets for a in s.addresses)  # type: ignore[attr-defined]


async def test_a_dead_apiservers_address_leaves_when_its_lease_expires(
    server: APIServer, client: Client
) -> None:
    port = server.port
    now = time.time()
    # A second apiserver that renewed 20 s ago and never since (killed with -9).
    await master_leases.renew(server.registry, "10.0.0.9", port, now - 20)
    # A third one that is alive.
    await master_leases.renew(server.registry, "10.0.0.8", port, now)
    assert await master_leases.reconcile(server.registry, "127.0.0.1", port, now) == ["10.0.0.8", "127.0.0.1"]
    assert await _addresses(client) == ["10.0.0.8", "127.0.0.1"]
    endpoints = await client.get("endpoints", "kubernetes", "default")
    assert [p.port for s in endpoints.subsets for p in s.ports] == [port]  # type: ignore[attr-defined]

    # Twenty seconds later the third has stopped renewing too; this one renews.
    later = now + 20
    await master_leases.renew(server.registry, "127.0.0.1", port, later)
    assert await master_leases.reconcile(server.registry, "127.0.0.1", port, later) == ["127.0.0.1"]
    assert await _addresses(client) == ["127.0.0.1"]
    leases = await client.list(
        "leases", "kube-system", label_selector=f"{master_leases.IDENTITY_LABEL}=kube-apiserver"
    )
    assert len(leases.items) == 3  # Leases stay (as in Kubernetes); only fresh ones count
