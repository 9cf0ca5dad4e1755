"""The node's Lease in kube-node-lease: the cheap, frequent heartbeat (every 10 s) the node
lifecycle controller watches; the NodeStatus is written only when it changes."""

from __future__ import annotations

import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.coordination.v1 import coordination_pb2
from services.client.client import Client
from services.client.errors import AlreadyExistsError, ConflictError, NotFoundError

NAMESPACE = "kube-node-lease"


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns() // 1000 * 1000)
    return stamp


async def renew(client: Client, node_name: str, duration: int, node_uid: str = "") -> coordination_pb2.Lease:
    """Create or renew the node's lease (holder = the node), one attempt plus a conflict retry."""
    for _ in range(2):
        try:
            lease = await client.get(coordination_pb2.Lease, node_name, NAMESPACE)
        except NotFoundError:
            lease = coordination_pb2.Lease()
            lease.metadata.name, lease.metadata.namespace = node_name, NAMESPACE
            if node_uid:
                lease.metadata.owner_references.add(
                    api_version="v1", kind="Node", name=node_name, uid=node_uid
                )
            lease.spec.holder_identity = node_name
            lease.spec.lease_duration_seconds = duration
            lease.spec.renew_time.CopyFrom(_now())
            try:
                return await client.create(lease)
            except AlreadyExistsError:
                continue
        assert isinstance(lease, coordination_pb2.Lease)
        lease.spec.holder_identity = node_name
        lease.spec.lease_duration_seconds = duration
        lease.spec.renew_time.CopyFrom(_now())
        try:
            return await client.update(lease)
        except ConflictError:
            continue
    raise ConflictError("lease renewal kept conflicting", grpc.StatusCode.ABORTED)
