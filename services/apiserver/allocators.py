"""Allocators for Service ClusterIPs and NodePorts that never double-book.

The allocation bitmap lives in storage (like Kubernetes' RangeAllocation objects) and every
change is a compare-and-swap on it, so allocations survive restarts and several apiservers
sharing one store never hand out the same address.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
from dataclasses import dataclass

from services.apiserver.storage.interface import ConflictError, KeyExistsError, Storage

_CAS_ATTEMPTS = 20


class RangeFullError(Exception):
    pass


class AllocatedError(Exception):
    pass


class OutOfRangeError(Exception):
    pass


@dataclass
class _Bitmap:
    size: int
    bits: bytearray

    def taken(self, offset: int) -> bool:
        return bool(self.bits[offset // 8] & (1 << (offset % 8)))

    def set(self, offset: int, value: bool) -> None:
        if value:
            self.bits[offset // 8] |= 1 << (offset % 8)
        else:
            self.bits[offset // 8] &= ~(1 << (offset % 8)) & 0xFF

    def first_free(self, start: int) -> int | None:
        for step in range(self.size):
            offset = (start + step) % self.size
            if not self.taken(offset):
                return offset
        return None


class RangeAllocator:
    """A range of `size` slots persisted at `key`; `describe` names the range in the record."""

    def __init__(self, storage: Storage, key: str, size: int, describe: str) -> None:
        self.storage = storage
        self.key = key
        self.size = size
        self.describe = describe

    async def _load(self) -> tuple[_Bitmap, int]:
        kv = await self.storage.get(self.key)
        if kv is None:
            empty = {"range": self.describe, "data": base64.b64encode(bytes((self.size + 7) // 8)).decode()}
            try:
                kv = await self.storage.create(self.key, json.dumps(empty).encode())
            except KeyExistsError:
                kv = await self.storage.get(self.key)
                assert kv is not None
        record = json.loads(kv.value)
        if record["range"] != self.describe:
            raise ValueError(f"allocation record {self.key} is for {record['range']}, not {self.describe}")
        return _Bitmap(self.size, bytearray(base64.b64decode(record["data"]))), kv.mod_revision

    async def _store(self, bitmap: _Bitmap, revision: int) -> None:
        record = {"range": self.describe, "data": base64.b64encode(bytes(bitmap.bits)).decode()}
        await self.storage.update(self.key, json.dumps(record).encode(), revision)

    async def allocate(self, offset: int | None = None) -> int:
        """Take `offset`, or any free slot when None."""
        for _ in range(_CAS_ATTEMPTS):
            bitmap, revision = await self._load()
            if offset is None:
                chosen = bitmap.first_free(random.randrange(self.size))
                if chosen is None:
                    raise RangeFullError(f"range {self.describe} is full")
            else:
                if not 0 <= offset < self.size:
                    raise OutOfRangeError(offset)
                if bitmap.taken(offset):
                    raise AllocatedError(offset)
                chosen = offset
            bitmap.set(chosen, True)
            try:
                await self._store(bitmap, revision)
            except ConflictError:
                continue
            return chosen
        raise RuntimeError(f"could not allocate from {self.describe}: too much contention")

    async def release(self, offset: int) -> None:
        if not 0 <= offset < self.size:
            return
        for _ in range(_CAS_ATTEMPTS):
            bitmap, revision = await self._load()
            if not bitmap.taken(offset):
                return
            bitmap.set(offset, False)
            try:
                await self._store(bitmap, revision)
            except ConflictError:
                continue
            return

    async def is_allocated(self, offset: int) -> bool:
        bitmap, _ = await self._load()
        return 0 <= offset < self.size and bitmap.taken(offset)


class ClusterIPAllocator:
    """Addresses of the service CIDR, without its network and broadcast addresses."""

    def __init__(self, storage: Storage, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        size = min(self.network.num_addresses - 2, 1 << 20)
        if size < 1:
            raise ValueError(f"service CIDR {cidr} is too small")
        self.ranges = RangeAllocator(storage, "/registry/ranges/serviceips", size, str(self.network))

    def first_ip(self) -> str:
        return str(self.network.network_address + 1)

    def _offset(self, ip: str) -> int:
        address = ipaddress.ip_address(ip)
        if address not in self.network:
            raise OutOfRangeError(ip)
        return int(address) - int(self.network.network_address) - 1

    async def allocate(self, ip: str = "") -> str:
        offset = await self.ranges.allocate(self._offset(ip) if ip else None)
        return str(self.network.network_address + 1 + offset)

    async def release(self, ip: str) -> None:
        try:
            offset = self._offset(ip)
        except (OutOfRangeError, ValueError):
            return
        await self.ranges.release(offset)


class NodePortAllocator:
    def __init__(self, storage: Storage, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.ranges = RangeAllocator(
            storage, "/registry/ranges/servicenodeports", high - low + 1, f"{low}-{high}"
        )

    async def allocate(self, port: int = 0) -> int:
        if port and not self.low <= port <= self.high:
            raise OutOfRangeError(port)
        return self.low + await self.ranges.allocate(port - self.low if port else None)

    async def release(self, port: int) -> None:
        if self.low <= port <= self.high:
            await self.ranges.release(port - self.low)
