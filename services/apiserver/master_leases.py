"""The `kubernetes` Service's Endpoints follow the live apiservers, as Kubernetes' "lease"
endpoint reconciler does: every apiserver renews a Lease of its own in kube-system every
RENEW_SECONDS and rewrites the Endpoints to the addresses whose Leases are fresh. An apiserver
killed with -9 never says goodbye; its address leaves the Endpoints TTL_SECONDS after its
last renewal, through whichever apiserver still runs, so pods and nodes stop dialling it."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.coordination.v1 import coordination_pb2
from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.registry import Registry
from services.machinery.kinds import REGISTRY

NAMESPACE = "kube-system"
IDENTITY_LABEL = "apiserver.kubernetes.io/identity"
IDENTITY = "kube-apiserver"
TTL_SECONDS = 15  # Kubernetes' master lease TTL
RENEW_SECONDS = 10.0  # Kubernetes' endpoint reconcile interval

_LEASES = REGISTRY.by_name("leases")
_ENDPOINTS = REGISTRY.by_name("endpoints")


def lease_name(address: str, port: int) -> str:
    """One Lease per advertised endpoint, the same name on every restart of that apiserver."""
    return "apiserver-" + hashlib.sha256(f"{address}:{port}".encode()).hexdigest()[:16]


def live_addresses(leases: Iterable[coordination_pb2.Lease], now: float) -> list[str]:
    """The addresses (holder identity "IP:PORT" minus the port) of Leases renewed within their
    duration, sorted so every apiserver writes the same Endpoints."""
    live = set()
    for lease in leases:
        address, sep, _ = lease.spec.holder_identity.rpartition(":")
        renewed = lease.spec.renew_time.ToNanoseconds() / 1e9
        if sep and address and renewed + lease.spec.lease_duration_seconds >= now:
            live.add(address)
    return sorted(live)


async def renew(registry: Registry, address: str, port: int, now: float) -> None:
    """Create or refresh this apiserver's Lease."""
    stamp = Timestamp()
    stamp.FromNanoseconds(int(now * 1e9) // 1000 * 1000)
    name = lease_name(address, port)

    def refresh(lease: coordination_pb2.Lease) -> None:
        lease.metadata.labels[IDENTITY_LABEL] = IDENTITY
        lease.spec.holder_identity = f"{address}:{port}"
        lease.spec.lease_duration_seconds = TTL_SECONDS
        lease.spec.renew_time.CopyFrom(stamp)

    try:
        await registry.update_with(_LEASES, NAMESPACE, name, refresh)
        return
    except errors.APIError as exc:
        if exc.reason != "NotFound":
            raise
    lease = coordination_pb2.Lease()
    lease.metadata.name, lease.metadata.namespace = name, NAMESPACE
    refresh(lease)
    try:
        await registry.create(lease)
    except errors.APIError as exc:
        if exc.reason != "AlreadyExists":  # another start raced us; the next round renews
            raise


async def reconcile(registry: Registry, own_address: str, port: int, now: float) -> list[str]:
    """Point the `kubernetes` Endpoints at the live apiservers (always this one); returns them."""
    page = await registry.list(_LEASES, NAMESPACE, label_selector=f"{IDENTITY_LABEL}={IDENTITY}")
    leases = [lease for lease in page.items if isinstance(lease, coordination_pb2.Lease)]
    wanted = sorted(set(live_addresses(leases, now)) | {own_address})
    current = await registry.get(_ENDPOINTS, "default", "kubernetes")
    assert isinstance(current, core_pb2.Endpoints)
    if sorted(a.ip for s in current.subsets for a in s.addresses) == wanted:
        return wanted

    def point(endpoints: core_pb2.Endpoints) -> None:
        del endpoints.subsets[:]
        subset = endpoints.subsets.add()
        for address in wanted:
            subset.addresses.add(ip=address)
        subset.ports.add(name="https", port=port, protocol="TCP")

    await registry.update_with(_ENDPOINTS, "default", "kubernetes", point)
    return wanted


async def heartbeat(registry: Registry, address: str, port: int) -> list[str]:
    """One round: renew, then reconcile (the loop in APIServer calls this every RENEW_SECONDS)."""
    now = time.time()
    await renew(registry, address, port, now)
    return await reconcile(registry, address, port, now)
