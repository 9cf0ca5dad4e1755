"""Leader election on a Lease object, as client-go's leaderelection: the holder renews the
Lease; a candidate takes it over when the holder has not renewed within the lease duration.
Optimistic concurrency on the Lease makes two candidates unable to win at once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.coordination.v1 import coordination_pb2
from services.client.client import Client
from services.client.errors import AlreadyExistsError, APIStatusError, ConflictError, NotFoundError

log = structlog.get_logger("leaderelection")


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns() // 1000 * 1000)
    return stamp


class LeaderElector:
    def __init__(
        self,
        client: Client,
        name: str,
        namespace: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        self.client = client
        self.name, self.namespace, self.identity = name, namespace, identity
        self.lease_duration, self.renew_deadline, self.retry_period = (
            lease_duration,
            renew_deadline,
            retry_period,
        )
        self.is_leader = False

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this candidate holds the lease afterwards."""
        try:
            lease = await self.client.get(coordination_pb2.Lease, self.name, self.namespace)
        except NotFoundError:
            lease = coordination_pb2.Lease()
            lease.metadata.name, lease.metadata.namespace = self.name, self.namespace
            self._claim(lease, transitions=0)
            try:
                await self.client.create(lease)
            except (AlreadyExistsError, ConflictError):
                return False
            return True
        assert isinstance(lease, coordination_pb2.Lease)
        spec = lease.spec
        holder = spec.holder_identity if spec.HasField("holder_identity") else ""
        renewed = spec.renew_time.ToNanoseconds() / 1e9 if spec.HasField("renew_time") else 0.0
        duration = (
            spec.lease_duration_seconds if spec.HasField("lease_duration_seconds") else self.lease_duration
        )
        if holder and holder != self.identity and time.time() < renewed + duration:
            return False
        transitions = spec.lease_transitions if spec.HasField("lease_transitions") else 0
        self._claim(lease, transitions if holder == self.identity else transitions + 1)
        try:
            await self.client.update(lease)
        except ConflictError:
            return False
        return True

    def _claim(self, lease: coordination_pb2.Lease, transitions: int) -> None:
        spec = lease.spec
        if not spec.HasField("holder_identity") or spec.holder_identity != self.identity:
            spec.acquire_time.CopyFrom(_now())
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = int(self.lease_duration)
        spec.renew_time.CopyFrom(_now())
        spec.lease_transitions = transitions

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Campaign until elected, run `lead` while leading; return when leadership is lost."""
        while not await self._attempt():
            await asyncio.sleep(self.retry_period)
        self.is_leader = True
        log.info("became leader", lease=f"{self.namespace}/{self.name}", identity=self.identity)
        work = asyncio.create_task(lead())
        try:
            last_renewal = time.monotonic()
            while not work.done():
                await asyncio.sleep(self.retry_period)
                if await self._attempt():
                    last_renewal = time.monotonic()
                elif time.monotonic() - last_renewal > self.renew_deadline:
                    log.warning(
                        "lost leadership", lease=f"{self.namespace}/{self.name}", identity=self.identity
                    )
                    return
        finally:
            self.is_leader = False
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except APIStatusError as exc:
            log.info("lease update failed", error=str(exc))
            return False

    async def release(self) -> None:
        """Give the lease up at shutdown so a successor need not wait for it to expire."""
        with contextlib.suppress(APIStatusError):
            lease = await self.client.get(coordination_pb2.Lease, self.name, self.namespace)
            assert isinstance(lease, coordination_pb2.Lease)
            if lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = ""
                lease.spec.lease_duration_seconds = 1
                await self.client.update(lease)
