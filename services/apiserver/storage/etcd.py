"""The distributed backend: a real etcd v3 cluster, spoken to over etcd's own gRPC API.

The contract maps onto etcd almost one to one (the interface was modelled on it): the store
revision is etcd's revision, a create is a Txn guarded by `create_revision == 0`, an update or
delete a Txn guarded by `mod_revision == expected` whose failure branch reads the key so the
ConflictError carries the current state, lists are Ranges at a revision, watches are Watch
streams with prev_kv, compaction is Compact.

Failover is our own rather than gRPC's round_robin: one channel per endpoint, every request
goes to the *active* endpoint, and a request that fails with UNAVAILABLE or an attempt
timeout (member down, restarting, partitioned, or without a leader) moves the active endpoint
to the next one and is retried until `request_timeout`. Owning this lets us decide per
request what a retry means:

- reads are retried freely;
- every write is a compare-guarded Txn, so retrying one whose first attempt may have landed
  can never apply it twice; it can only report a conflict caused by itself. After such an
  ambiguous failure a create that finds our exact value, or an update that finds our value at
  a newer revision, is treated as the success it was. A delete cannot tell, and reports
  KeyNotFoundError (the key is gone either way); an unconditional update (expected 0) may be
  applied twice with the same value;
- watches resume on another member from the revision after the last event delivered (or the
  last progress notification), so consumers see no loss and no duplicates across a failover,
  unless that history has been compacted meanwhile (CompactedError, as for any watch).

Every call carries etcd's `hasleader` metadata, so a member cut off from the quorum refuses
requests and closes watches instead of stalling or going silent, and the channels send
keepalive pings (every 10 s, within etcd's 5 s minimum) while calls are open, so a vanished
peer is noticed. Messages up to 16 MiB are accepted in both directions (etcd itself limits
requests to --max-request-bytes, 1.5 MiB by default, above Kubernetes' object size limit).

TLS (Kubernetes' --etcd-cafile/--etcd-certfile/--etcd-keyfile): an `https://` endpoint, or any
endpoint without a scheme when TLS material is given, is dialled with TLS, verifying the
member's certificate against the CA and presenting the client certificate that etcd's
--client-cert-auth asks for; an `http://` endpoint is plaintext.

etcd does not publish its compaction revision; `compacted_revision` finds it exactly with a
binary search of Ranges at past revisions (a Range below it fails with ErrCompacted), starting
from the highest compaction this client has seen, so it also sees compactions made by other
apiservers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

from pinnace.etcd.v3 import kv_pb2, rpc_pb2, rpc_pb2_grpc
from services.apiserver.storage.interface import (
    CompactedError,
    ConflictError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Storage,
    StorageError,
    StorageUnavailableError,
    StoreEvent,
)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # etcd answers pings more frequent than --grpc-keepalive-min-time (5 s) with GOAWAY, and
    # pings without open calls count against that (its policy has PermitWithoutStream=false).
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    # A restarted member is back in use within about a second, not after gRPC's 2 minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]
# Errors after which another member may well succeed.
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_REQUIRE_LEADER = (("hasleader", "true"),)
_COMPACTED_MESSAGE = "required revision has been compacted"


class EtcdError(StorageError):
    """etcd refused a request for a reason retrying will not cure (bad request, too large, alarm)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"etcd: {code.name}: {details}")
        self.code = code
        self.details = details


class EtcdUnavailableError(StorageUnavailableError):
    """No endpoint served the request within the request timeout (the apiserver's 503)."""


def key_range_end(key: bytes) -> bytes:
    """etcd's range_end for "every key starting with `key`": the key with its last byte that is
    not 0xff incremented; "\\0" (to the end of the keyspace) when there is none."""
    stripped = key.rstrip(b"\xff")
    if not stripped:
        return b"\x00"
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _is_compacted(error: grpc.aio.AioRpcError) -> bool:
    return error.code() == grpc.StatusCode.OUT_OF_RANGE and _COMPACTED_MESSAGE in (error.details() or "")


@dataclass(frozen=True)
class EtcdTLS:
    """The CA that signed the members' certificates, and the client certificate and key."""

    ca_pem: bytes = b""
    cert_pem: bytes = b""
    key_pem: bytes = b""

    @classmethod
    def from_files(cls, ca_file: str = "", cert_file: str = "", key_file: str = "") -> EtcdTLS:
        if bool(cert_file) != bool(key_file):
            raise ValueError("--etcd-certfile and --etcd-keyfile go together")
        return cls(*(Path(f).read_bytes() if f else b"" for f in (ca_file, cert_file, key_file)))

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca_pem or None, self.key_pem or None, self.cert_pem or None)


def _target(endpoint: str, tls: EtcdTLS | None) -> tuple[str, EtcdTLS | None]:
    """host:port and the TLS to dial it with (None: plaintext), from an endpoint as given."""
    if endpoint.startswith("http://"):
        return endpoint.removeprefix("http://").rstrip("/"), None
    if endpoint.startswith("https://"):
        return endpoint.removeprefix("https://").rstrip("/"), tls or EtcdTLS()
    return endpoint, tls


@dataclass
class _Endpoint:
    target: str
    channel: grpc.aio.Channel
    kv: rpc_pb2_grpc.KVStub
    watch: rpc_pb2_grpc.WatchStub


class _Endpoints:
    """One lazily created channel per endpoint and the index of the one in use."""

    def __init__(self, endpoints: Sequence[str], tls: EtcdTLS | None = None) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        dials = [_target(e, tls) for e in endpoints]
        self.targets = [target for target, _ in dials]
        self._tls = [security for _, security in dials]
        self._open: dict[int, _Endpoint] = {}
        self.active = 0

    def pick(self) -> tuple[int, _Endpoint]:
        index = self.active
        endpoint = self._open.get(index)
        if endpoint is None:
            target, tls = self.targets[index], self._tls[index]
            channel = (
                grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
                if tls is None
                else grpc.aio.secure_channel(target, tls.credentials(), options=CHANNEL_OPTIONS)
            )
            # The generated stubs are unannotated; the _Endpoint fields give them their types.
            kv = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
            watch = rpc_pb2_grpc.WatchStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
            endpoint = _Endpoint(target, channel, kv, watch)
            self._open[index] = endpoint
        return index, endpoint

    def failed(self, index: int) -> None:
        """Move on from `index`, unless a concurrent request already did."""
        if index == self.active:
            self.active = (index + 1) % len(self.targets)

    async def close(self) -> None:
        endpoints, self._open = list(self._open.values()), {}
        for endpoint in endpoints:
            await endpoint.channel.close(grace=None)


def _kv(key: str, kv: kv_pb2.KeyValue) -> KeyValue:
    return KeyValue(key, kv.value, kv.mod_revision, kv.create_revision)


class EtcdStorage(Storage):
    """`Storage` on an etcd v3 cluster. Every key is stored under `prefix` (one cluster can
    hold several independent stores, e.g. one per test), which results never show. Choose
    prefixes that do not extend each other ("/a" and "/ab" would see each other's keys in a
    list of everything)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        prefix: str = "",
        request_timeout: float = 20.0,
        attempt_timeout: float = 2.0,
        tls: EtcdTLS | None = None,
    ) -> None:
        self._endpoints = _Endpoints(endpoints, tls)
        self._prefix = prefix.encode()
        self.request_timeout = request_timeout
        self.attempt_timeout = attempt_timeout
        self._known_compacted = 0

    @property
    def active_endpoint(self) -> str:
        """The endpoint requests go to now (failover moves it)."""
        return self._endpoints.targets[self._endpoints.active]

    # ------------------------------------------------------------------ plumbing

    def _key(self, key: str) -> bytes:
        return self._prefix + key.encode()

    def _name(self, key: bytes) -> str:
        return key[len(self._prefix) :].decode()

    async def _call(self, method: str, request: Message, *, write: bool) -> tuple[Any, bool]:
        """Call KV `method` on the active endpoint, failing over on retryable errors.

        Returns the answer and whether an earlier attempt failed ambiguously (a write may have
        been applied). Non-retryable gRPC errors propagate as AioRpcError for the caller to map.
        A write gets `attempt_timeout` per attempt: a proposal a follower forwarded to a leader
        that died is never answered, and waiting out etcd's own 7 s timeout would stall the
        API. A read gets the whole request_timeout, so a large list is never cut short; dead
        members refuse connections at once and leaderless ones answer UNAVAILABLE at once
        (the `hasleader` metadata asks for that).
        """
        deadline = time.monotonic() + self.request_timeout
        ambiguous = False
        attempt = 0
        targets = self._endpoints.targets
        while True:
            index, endpoint = self._endpoints.pick()
            remaining = max(deadline - time.monotonic(), 0.05)
            timeout = min(self.attempt_timeout, remaining) if write else remaining
            try:
                answer = await getattr(endpoint.kv, method)(
                    request, timeout=timeout, metadata=_REQUIRE_LEADER
                )
            except grpc.aio.AioRpcError as error:
                if error.code() not in _RETRYABLE:
                    raise
                ambiguous = True
                self._endpoints.failed(index)
                attempt += 1
                if time.monotonic() >= deadline:
                    raise EtcdUnavailableError(
                        f"no etcd endpoint of {targets} answered within "
                        f"{self.request_timeout}s: {error.code().name}: {error.details()}"
                    ) from error
                # Try every member at once, then back off while an election settles.
                if attempt % len(targets) == 0:
                    await asyncio.sleep(min(0.05 * 2 ** (attempt // len(targets)), 1.0))
            else:
                return answer, ambiguous

    @staticmethod
    def _failed(error: grpc.aio.AioRpcError) -> StorageError:
        return EtcdError(error.code(), error.details() or "")

    async def _range(self, request: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
        try:
            response: rpc_pb2.RangeResponse = (await self._call("Range", request, write=False))[0]
        except grpc.aio.AioRpcError as error:
            if _is_compacted(error):
                raise CompactedError(request.revision, await self.compacted_revision()) from error
            raise self._failed(error) from error
        return response

    async def _txn(self, request: rpc_pb2.TxnRequest) -> tuple[rpc_pb2.TxnResponse, bool]:
        try:
            return await self._call("Txn", request, write=True)
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error

    def _guarded(self, key: bytes, compare: rpc_pb2.Compare, then: rpc_pb2.RequestOp) -> rpc_pb2.TxnRequest:
        """A Txn applying `then` if `compare` holds, else reading the key's current state."""
        compare.key = key
        return rpc_pb2.TxnRequest(
            compare=[compare],
            success=[then],
            failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))],
        )

    def _revision_guard(self, expected_revision: int) -> rpc_pb2.Compare:
        if expected_revision:
            return rpc_pb2.Compare(
                result=rpc_pb2.Compare.EQUAL, target=rpc_pb2.Compare.MOD, mod_revision=expected_revision
            )
        # Unconditional, but the key must exist: a missing key's create_revision is 0.
        return rpc_pb2.Compare(
            result=rpc_pb2.Compare.GREATER, target=rpc_pb2.Compare.CREATE, create_revision=0
        )

    def _current_of(self, key: str, response: rpc_pb2.TxnResponse) -> KeyValue | None:
        kvs = response.responses[0].response_range.kvs
        return _kv(key, kvs[0]) if kvs else None

    # ------------------------------------------------------------------ the contract

    async def create(self, key: str, value: bytes) -> KeyValue:
        raw = self._key(key)
        response, ambiguous = await self._txn(
            self._guarded(
                raw,
                rpc_pb2.Compare(
                    result=rpc_pb2.Compare.EQUAL, target=rpc_pb2.Compare.CREATE, create_revision=0
                ),
                rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=raw, value=value)),
            )
        )
        if response.succeeded:
            revision = response.header.revision
            return KeyValue(key, value, revision, revision)
        current = self._current_of(key, response)
        if ambiguous and current is not None and current.value == value:
            return current
        raise KeyExistsError(key)

    async def get(self, key: str) -> KeyValue | None:
        response = await self._range(rpc_pb2.RangeRequest(key=self._key(key)))
        return _kv(key, response.kvs[0]) if response.kvs else None

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> ListResult:
        low = self._key(prefix)
        end = key_range_end(low)
        if start_after:
            low = max(low, self._key(start_after) + b"\x00")
        # Sort order NONE: etcd returns ranges in key order anyway, and an explicit sort makes
        # etcd 3.4 read the whole range before applying the limit.
        response = await self._range(
            rpc_pb2.RangeRequest(key=low or b"\x00", range_end=end, revision=revision, limit=limit)
        )
        items = [_kv(self._name(kv.key), kv) for kv in response.kvs]
        return ListResult(items, revision or response.header.revision, bool(limit) and response.more)

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        raw = self._key(key)
        response, ambiguous = await self._txn(
            self._guarded(
                raw,
                self._revision_guard(expected_revision),
                rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=raw, value=value, prev_kv=True)),
            )
        )
        if response.succeeded:
            prev = response.responses[0].response_put.prev_kv
            return KeyValue(key, value, response.header.revision, prev.create_revision)
        current = self._current_of(key, response)
        if current is None:
            raise KeyNotFoundError(key)
        if ambiguous and current.value == value and current.mod_revision > expected_revision:
            return current
        raise ConflictError(key, expected_revision, current)

    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        raw = self._key(key)
        response, _ = await self._txn(
            self._guarded(
                raw,
                self._revision_guard(expected_revision),
                rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=raw, prev_kv=True)),
            )
        )
        if response.succeeded:
            prev_kvs = response.responses[0].response_delete_range.prev_kvs
            if not prev_kvs:
                raise KeyNotFoundError(key)
            return KeyValue(key, prev_kvs[0].value, response.header.revision, prev_kvs[0].create_revision)
        current = self._current_of(key, response)
        if current is None:
            raise KeyNotFoundError(key)
        raise ConflictError(key, expected_revision, current)

    def watch(self, prefix: str, start_revision: int, *, progress: bool = False) -> AsyncIterator[StoreEvent]:
        # Progress requests are not implemented for etcd: request_progress() says so, and
        # consistent reads go to etcd.
        return _Watch(self, prefix, start_revision).events()

    async def current_revision(self) -> int:
        response = await self._range(rpc_pb2.RangeRequest(key=self._prefix or b"\x00", count_only=True))
        return response.header.revision

    async def _readable_at(self, revision: int) -> bool:
        request = rpc_pb2.RangeRequest(key=self._prefix or b"\x00", revision=revision, count_only=True)
        try:
            await self._call("Range", request, write=False)
        except grpc.aio.AioRpcError as error:
            if _is_compacted(error):
                return False
            raise self._failed(error) from error
        return True

    async def compacted_revision(self) -> int:
        # Ranges at r fail exactly when r < the compaction revision C. Search [known, current]
        # for the lowest readable revision; known is a lower bound since C only grows.
        high = await self.current_revision()
        low = max(self._known_compacted, 1)
        if low >= high or await self._readable_at(low):
            return self._known_compacted
        while high - low > 1:  # invariant: low unreadable, high readable
            middle = (low + high) // 2
            if await self._readable_at(middle):
                high = middle
            else:
                low = middle
        self.note_compacted(high)
        return high

    def note_compacted(self, revision: int) -> None:
        """Record a compaction revision etcd reported (watch responses carry it)."""
        self._known_compacted = max(self._known_compacted, revision)

    async def compact(self, revision: int) -> None:
        target = min(revision, await self.current_revision())
        if target <= self._known_compacted:
            return
        request = rpc_pb2.CompactionRequest(revision=target)
        try:
            await self._call("Compact", request, write=True)
        except grpc.aio.AioRpcError as error:
            # Already compacted to target or beyond (by us in an earlier attempt, or by another
            # apiserver): the history before target is gone, which is what was asked.
            if not _is_compacted(error):
                raise self._failed(error) from error
        self.note_compacted(target)

    async def close(self) -> None:
        await self._endpoints.close()

    # ------------------------------------------------------------------ for _Watch

    @property
    def endpoints(self) -> _Endpoints:
        return self._endpoints

    def raw_key(self, key: str) -> bytes:
        return self._key(key)

    def name_of(self, key: bytes) -> str:
        return self._name(key)


class _Watch:
    """One watch: a Watch stream per connection, resumed on another member when one fails."""

    def __init__(self, store: EtcdStorage, prefix: str, start_revision: int) -> None:
        self.store = store
        self.key = store.raw_key(prefix) or b"\x00"
        self.range_end = key_range_end(store.raw_key(prefix))
        self.start_revision = start_revision
        # The revision to resume from: everything before it has been delivered.
        self.next_revision = start_revision

    async def events(self) -> AsyncIterator[StoreEvent]:
        endpoints = self.store.endpoints
        failures = 0
        # Give up when no member has served this watch for request_timeout.
        deadline = time.monotonic() + self.store.request_timeout
        while True:
            index, endpoint = endpoints.pick()
            call = endpoint.watch.Watch(metadata=_REQUIRE_LEADER)
            reason = "stream closed by the server"
            try:
                await call.write(self._create_request())
                async for response in call:
                    failures = 0
                    deadline = time.monotonic() + self.store.request_timeout
                    for event in self._handle(response):
                        yield event
                        self.next_revision = event.revision + 1
            except grpc.aio.AioRpcError as error:
                if error.code() not in _RETRYABLE:
                    raise EtcdError(error.code(), error.details() or "") from error
                reason = f"{error.code().name}: {error.details()}"
            finally:
                call.cancel()
            endpoints.failed(index)
            failures += 1
            if time.monotonic() >= deadline:
                raise EtcdUnavailableError(
                    f"watch on {self.key!r}: no etcd endpoint of {endpoints.targets} served it "
                    f"within {self.store.request_timeout}s ({reason})"
                )
            if failures % len(endpoints.targets) == 0:
                await asyncio.sleep(min(0.05 * 2 ** (failures // len(endpoints.targets)), 1.0))

    def _create_request(self) -> rpc_pb2.WatchRequest:
        return rpc_pb2.WatchRequest(
            create_request=rpc_pb2.WatchCreateRequest(
                key=self.key,
                range_end=self.range_end,
                start_revision=self.next_revision,
                prev_kv=True,
                progress_notify=True,
            )
        )

    def _handle(self, response: rpc_pb2.WatchResponse) -> list[StoreEvent]:
        if response.compact_revision:
            self.store.note_compacted(response.compact_revision)
            raise CompactedError(self.next_revision, response.compact_revision)
        if response.canceled:
            raise EtcdError(grpc.StatusCode.ABORTED, f"watch cancelled by etcd: {response.cancel_reason}")
        if response.created:
            # A watch from "now" (0) resumes after the revision it was created at; one that
            # replays history must not skip the replay.
            if self.next_revision == 0:
                self.next_revision = response.header.revision + 1
            return []
        if not response.events:
            # A progress notification (etcd sends them only to watchers that are caught up):
            # every event up to header.revision has been delivered.
            self.next_revision = max(self.next_revision, response.header.revision + 1)
            return []
        return [self._event(event) for event in response.events]

    def _event(self, event: kv_pb2.Event) -> StoreEvent:
        name = self.store.name_of(event.kv.key)
        prev = _kv(name, event.prev_kv) if event.HasField("prev_kv") else None
        if event.type == kv_pb2.Event.DELETE:
            last = KeyValue(
                name,
                prev.value if prev else b"",
                event.kv.mod_revision,
                prev.create_revision if prev else 0,
            )
            return StoreEvent(EventType.DELETE, last, prev)
        return StoreEvent(EventType.PUT, _kv(name, event.kv), prev)
