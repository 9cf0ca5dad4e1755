"""The storage contract every backend meets: etcd's data model, reduced to what the
apiserver needs.

Every write gets a new, strictly increasing revision for the whole store; an object's
resourceVersion is the revision of its last write. Conditional writes compare that revision
(optimistic concurrency). Watches replay history from a revision, so a client that was
disconnected resumes without losing or duplicating events, until compaction drops the
history it needs (CompactedError, Kubernetes' 410 Gone).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


class EventType(Enum):
    PUT = "PUT"
    DELETE = "DELETE"
    # Not a change: "you have seen every change up to kv.mod_revision" (etcd's progress
    # notification). Only watches opened with progress=True receive them.
    PROGRESS = "PROGRESS"


@dataclass(frozen=True)
class StoreEvent:
    """One change. For DELETE, `kv.value` is the last value the key had and `kv.mod_revision`
    the revision of the deletion; `prev` is the state before the change (None on create)."""

    type: EventType
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True)
class ListResult:
    items: list[KeyValue]
    # The store revision the list reflects; pass it back to continue a paged list consistently.
    revision: int
    # True when `limit` cut the list short; continue after the last item's key.
    more: bool


class StorageError(Exception):
    """Base of every storage failure."""


class KeyExistsError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key already exists: {key}")
        self.key = key


class KeyNotFoundError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StorageError):
    """A conditional write lost: the key's revision is not the one the caller read."""

    def __init__(self, key: str, expected: int, current: KeyValue | None) -> None:
        actual = current.mod_revision if current else 0
        super().__init__(f"revision conflict on {key}: expected {expected}, current {actual}")
        self.key = key
        self.current = current


class StorageUnavailableError(StorageError):
    """The store cannot be reached now; the request may succeed if retried (503)."""


class CompactedError(StorageError):
    """The requested revision's history has been compacted away (Kubernetes: 410 Gone)."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"required revision {requested} has been compacted (compacted revision {compacted})")
        self.requested = requested
        self.compacted = compacted


class Storage(ABC):
    """A revisioned key-value store with prefix lists and watches."""

    @abstractmethod
    async def create(self, key: str, value: bytes) -> KeyValue:
        """Write a new key; KeyExistsError if it exists."""

    @abstractmethod
    async def get(self, key: str) -> KeyValue | None: ...

    @abstractmethod
    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> ListResult:
        """Keys under prefix, sorted, as of `revision` (0: now), after `start_after`, at most
        `limit` of them (0: all)."""

    @abstractmethod
    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        """Replace the value if the key's mod revision is `expected_revision`.

        KeyNotFoundError if the key is absent; ConflictError (with the current state) otherwise.
        """

    @abstractmethod
    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        """Delete the key (if its mod revision is `expected_revision`, unless 0).

        Returns the deleted value with the deletion's revision as mod_revision.
        """

    @abstractmethod
    def watch(self, prefix: str, start_revision: int, *, progress: bool = False) -> AsyncIterator[StoreEvent]:
        """Every change under prefix with revision >= start_revision, then live changes.

        With progress=True the stream also carries PROGRESS events answering request_progress.
        Raises CompactedError (on first iteration) when start_revision is compacted.
        """

    def request_progress(self, prefix: str) -> bool:
        """Ask the progress watches on exactly `prefix` to report the store's current revision
        once they have delivered every change up to it. False: this backend cannot (the caller
        reads the store instead)."""
        return False

    @abstractmethod
    async def current_revision(self) -> int: ...

    @abstractmethod
    async def compacted_revision(self) -> int: ...

    @abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history before `revision` (the latest state of every key stays)."""

    @abstractmethod
    async def close(self) -> None: ...


def prefix_end(prefix: str) -> str:
    """The smallest key greater than every key starting with prefix (etcd's range_end)."""
    if not prefix:
        return "\x00"
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
