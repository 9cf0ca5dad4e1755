"""The generic registry: Kubernetes' object semantics over a revisioned key-value store.

It gives every kind uid, creationTimestamp, generateName, generation, resourceVersion,
optimistic concurrency, finalizers with deletionTimestamp, graceful pod deletion, the status
subresource, and lists and watches served from the watch cache.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.meta.v1 import meta_pb2
from services.apiserver import errors, strategies
from services.apiserver.admission.chain import AdmissionChain, Attributes, Operation
from services.apiserver.encryption import Transformer
from services.apiserver.storage.interface import (
    CompactedError,
    ConflictError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Storage,
)
from services.apiserver.watchcache import CacheEvent, Filter, TooOldError, WatchCache
from services.machinery import fields as field_selectors
from services.machinery import labels as label_selectors
from services.machinery.defaults import apply_defaults
from services.machinery.errors import FieldError
from services.machinery.kinds import REGISTRY, KindInfo
from services.machinery.validation import ServiceRules, validate

MAX_OBJECT_BYTES = 1536 * 1024
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATE_ATTEMPTS = 8
_CONFLICT_RETRIES = 5
# A server-side read-modify-write retries a conflict on fresh state until it lands, as
# Kubernetes' GuaranteedUpdate does (it has no bound); this bound only stops a livelock.
_UPDATE_WITH_ATTEMPTS = 100
# Subresources whose writes change only fields the server itself sets on an object it already
# validated: a binding sets spec.nodeName and the PodScheduled condition. Kubernetes' binding
# storage does not validate the pod again either.
_SERVER_SET_SUBRESOURCES = frozenset({"binding"})
# How long a consistent list waits for the watch cache to catch up before reading the store
# (Kubernetes waits up to 3 s too).
_FRESH_TIMEOUT = 3.0


def meta_of(obj: Message) -> meta_pb2.ObjectMeta:
    meta: meta_pb2.ObjectMeta = obj.metadata  # type: ignore[attr-defined]
    return meta


@dataclass(frozen=True)
class WatchItem:
    type: str
    obj: Message


@dataclass(frozen=True)
class ListPage:
    items: list[Message]
    resource_version: str
    continue_token: str


class Registry:
    def __init__(
        self,
        storage: Storage,
        admission: AdmissionChain,
        service_rules: ServiceRules,
        transformers: dict[str, Transformer] | None = None,
    ) -> None:
        self.storage = storage
        self.transformers = transformers or {}
        self.admission = admission
        self.service_rules = service_rules
        self.caches: dict[str, WatchCache] = {}

    # ------------------------------------------------------------------ keys and encoding

    @staticmethod
    def key(info: KindInfo, namespace: str, name: str) -> str:
        return (
            f"/registry/{info.plural}/{namespace}/{name}"
            if info.namespaced
            else f"/registry/{info.plural}/{name}"
        )

    @staticmethod
    def prefix(info: KindInfo, namespace: str = "") -> str:
        if info.namespaced and namespace:
            return f"/registry/{info.plural}/{namespace}/"
        return f"/registry/{info.plural}/"

    def decoder(self, info: KindInfo) -> Callable[[KeyValue], Message]:
        transformer = self.transformers.get(info.plural)

        def decode(kv: KeyValue) -> Message:
            value = transformer.open(kv.value, kv.key) if transformer is not None else kv.value
            obj: Message = info.message_type.FromString(value)
            meta_of(obj).resource_version = str(kv.mod_revision)
            return obj

        return decode

    def encode(self, info: KindInfo, obj: Message) -> bytes:
        # The stored bytes carry no resourceVersion (the store's revision is the truth); clear
        # it for the serialisation only, rather than copying the object.
        meta = meta_of(obj)
        revision, meta.resource_version = meta.resource_version, ""
        try:
            data = obj.SerializeToString(deterministic=True)
        finally:
            meta.resource_version = revision
        if len(data) > MAX_OBJECT_BYTES:
            raise errors.too_large(MAX_OBJECT_BYTES)
        transformer = self.transformers.get(info.plural)
        if transformer is not None:
            data = transformer.seal(data, self.key(info, meta.namespace, meta.name))
        return data

    def _from_kv(self, info: KindInfo, kv: KeyValue) -> Message:
        return self.decoder(info)(kv)

    async def rewrite_all(self, info: KindInfo) -> int:
        """Store every object of a kind again, e.g. to re-encrypt Secrets with the current first key."""
        listed = await self.storage.list(self.prefix(info))
        rewritten = 0
        for kv in listed.items:
            obj = self._from_kv(info, kv)
            try:
                await self.storage.update(kv.key, self.encode(info, obj), kv.mod_revision)
            except (ConflictError, KeyNotFoundError):
                continue  # written or deleted meanwhile: already in the current form or gone
            rewritten += 1
        return rewritten

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        for info in REGISTRY.stored():
            cache = WatchCache(info, self.storage, self.prefix(info), self.decoder(info))
            await cache.start()
            self.caches[info.plural] = cache

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.caches.values()))

    # ------------------------------------------------------------------ reads

    async def get(self, info: KindInfo, namespace: str, name: str) -> Message:
        kv = await self.storage.get(self.key(info, namespace, name))
        if kv is None:
            raise errors.not_found(info, name)
        return self._from_kv(info, kv)

    async def get_cached(self, info: KindInfo, namespace: str, name: str) -> Message | None:
        return self.caches[info.plural].objects.get(self.key(info, namespace, name))

    def _filter(self, info: KindInfo, namespace: str, label_selector: str, field_selector: str) -> Filter:
        try:
            labels = label_selectors.parse(label_selector)
        except label_selectors.SelectorError as exc:
            raise errors.bad_request(f"unable to parse requirement: {exc}") from None
        try:
            fields = field_selectors.parse(field_selector, info.field_labels())
        except field_selectors.FieldSelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        return Filter(namespace if info.namespaced else "", labels, fields, info)

    async def list(
        self,
        info: KindInfo,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ListPage:
        flt = self._filter(info, namespace, label_selector, field_selector)
        if limit <= 0 and not continue_token and resource_version_match != "Exact":
            cache = self.caches[info.plural]
            # "0" accepts any cached state; otherwise the cache must be at least as new as asked
            # (a consistent read: as new as the store), else the store answers.
            if resource_version == "0":
                wanted = 0
            elif resource_version:
                wanted = _parse_revision(resource_version)
            else:
                wanted = await self.storage.current_revision()
            if await cache.wait_fresh(wanted, _FRESH_TIMEOUT):
                items, revision = cache.list(flt)
                return ListPage(items, str(revision), "")
            if resource_version:
                resource_version = ""
        return await self._list_from_storage(info, flt, limit, continue_token, resource_version)

    async def _list_from_storage(
        self, info: KindInfo, flt: Filter, limit: int, continue_token: str, resource_version: str
    ) -> ListPage:
        prefix = self.prefix(info, flt.namespace)
        revision, start_after = 0, ""
        if continue_token:
            revision, start_after = _decode_continue(continue_token, prefix)
        elif resource_version and resource_version != "0":
            revision = _parse_revision(resource_version)
        items: builtins.list[Message] = []
        more = False
        try:
            while True:
                page = await self.storage.list(
                    prefix,
                    revision=revision,
                    limit=max(limit - len(items), 1) if limit else 0,
                    start_after=start_after,
                )
                revision = page.revision
                for kv in page.items:
                    start_after = kv.key
                    obj = self._from_kv(info, kv)
                    if flt.matches(obj):
                        items.append(obj)
                more = page.more
                if not more or (limit and len(items) >= limit):
                    break
        except CompactedError:
            raise errors.expired(
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter."
            ) from None
        token = _encode_continue(revision, start_after) if more else ""
        return ListPage(items, str(revision), token)

    async def watch(
        self,
        info: KindInfo,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
    ) -> AsyncIterator[builtins.list[WatchItem]]:
        """The watch's events in order, in batches of those that were ready together."""
        flt = self._filter(info, namespace, label_selector, field_selector)
        cache = self.caches[info.plural]
        after = None if resource_version in ("", "0") else _parse_revision(resource_version)
        try:
            async for batch in cache.watch(flt, after):
                yield [WatchItem(event.type, event.obj) for event in batch]
            return
        except TooOldError:
            assert after is not None
        compacted = await self.storage.compacted_revision()
        if after < compacted:
            raise errors.expired(f"too old resource version: {after} ({compacted})")
        async for item in self._watch_storage(info, flt, after):
            yield [item]

    async def _watch_storage(self, info: KindInfo, flt: Filter, after: int) -> AsyncIterator[WatchItem]:
        """History older than the cache's window, straight from storage."""
        try:
            async for event in self.storage.watch(self.prefix(info, flt.namespace), after + 1):
                obj = self._from_kv(info, event.kv)
                prev = self._from_kv(info, event.prev) if event.prev is not None else None
                kind = (
                    "DELETED"
                    if event.type is EventType.DELETE
                    else ("MODIFIED" if prev is not None else "ADDED")
                )
                translated = WatchCache._translate(CacheEvent(kind, obj, prev, event.revision), flt)
                if translated is not None:
                    yield WatchItem(translated.type, translated.obj)
        except CompactedError as exc:
            raise errors.expired(f"too old resource version: {after} ({exc.compacted})") from None

    # ------------------------------------------------------------------ writes

    def _check_valid(
        self, info: KindInfo, obj: Message, extra: builtins.list[FieldError] | None = None
    ) -> None:
        problems = validate(obj, self.service_rules) + (extra or [])
        if problems:
            meta = meta_of(obj)
            raise errors.invalid(info, meta.name or meta.generate_name, problems)

    async def create(self, obj: Message, *, dry_run: bool = False) -> Message:
        info = REGISTRY.by_message(obj)
        if info.subresource_only:
            raise errors.method_not_allowed(info, "create")
        meta = meta_of(obj)
        if not info.namespaced:
            meta.namespace = ""
        apply_defaults(obj)
        strategies.prepare_for_create(info, obj)
        for field in ("uid", "resource_version", "self_link"):
            meta.ClearField(field)
        meta.ClearField("deletion_timestamp")
        meta.ClearField("deletion_grace_period_seconds")
        meta.creation_timestamp.CopyFrom(_now())
        generated = not meta.name and bool(meta.generate_name)
        if generated:
            meta.name = _generate_name(meta.generate_name)
        self._check_valid(info, obj)
        attrs = Attributes(Operation.CREATE, info, meta.namespace, meta.name, obj, dry_run=dry_run)
        await self.admission.admit(attrs)
        try:
            meta.uid = str(uuid.uuid4())
            if dry_run:
                return obj
            for attempt in range(_GENERATE_ATTEMPTS if generated else 1):
                try:
                    kv = await self.storage.create(
                        self.key(info, meta.namespace, meta.name), self.encode(info, obj)
                    )
                    break
                except KeyExistsError:
                    if not generated or attempt == _GENERATE_ATTEMPTS - 1:
                        raise errors.already_exists(info, meta.name) from None
                    meta.name = _generate_name(meta.generate_name)
        except BaseException:
            await self.admission.rollback(attrs)
            raise
        await self.admission.committed(attrs)
        meta.resource_version = str(kv.mod_revision)
        return obj

    async def update(self, obj: Message, *, subresource: str = "", dry_run: bool = False) -> Message:
        """Update (spec and metadata) or the status subresource (status only)."""
        info = REGISTRY.by_message(obj)
        meta = meta_of(obj)
        namespace = meta.namespace if info.namespaced else ""
        self._check_update_subresource(info, subresource)
        key = self.key(info, namespace, meta.name)
        current_kv = await self.storage.get(key)
        if current_kv is None:
            raise errors.not_found(info, meta.name)
        old = self._from_kv(info, current_kv)
        if meta.resource_version and meta.resource_version != str(current_kv.mod_revision):
            raise errors.stale(info, meta.name)
        new = self._merge_for_update(info, old, obj, subresource)
        return await self._write_update(info, key, old, new, current_kv.mod_revision, subresource, dry_run)

    def _check_update_subresource(self, info: KindInfo, subresource: str) -> None:
        if subresource == "status" and not strategies.has_status_subresource(info):
            raise errors.method_not_allowed(info, "update status")
        if subresource == "approval" and "approval" not in info.subresources:
            raise errors.method_not_allowed(info, "update approval")

    def _merge_for_update(self, info: KindInfo, old: Message, incoming: Message, subresource: str) -> Message:
        new = type(old)()
        if subresource in ("status", "approval"):
            new.CopyFrom(old)
            new.ClearField("status")
            getattr(new, "status").CopyFrom(getattr(incoming, "status"))  # noqa: B009
            strategies.prepare_for_update(old, new, subresource)
            return new
        new.CopyFrom(incoming)
        new_meta, old_meta = meta_of(new), meta_of(old)
        # Identity and lifecycle fields belong to the server; a client cannot change them.
        new_meta.namespace = old_meta.namespace
        new_meta.uid = old_meta.uid
        new_meta.generation = old_meta.generation
        new_meta.generate_name = old_meta.generate_name
        new_meta.creation_timestamp.CopyFrom(old_meta.creation_timestamp)
        for field in ("deletion_timestamp", "deletion_grace_period_seconds"):
            new_meta.ClearField(field)
        if old_meta.HasField("deletion_timestamp"):
            new_meta.deletion_timestamp.CopyFrom(old_meta.deletion_timestamp)
        if old_meta.HasField("deletion_grace_period_seconds"):
            new_meta.deletion_grace_period_seconds = old_meta.deletion_grace_period_seconds
        # A binding sets spec.nodeName and the PodScheduled condition in one write; every other
        # update leaves status to the status subresource.
        if strategies.has_status_subresource(info) and subresource != "binding":
            new.ClearField("status")
            if old.HasField("status"):
                getattr(new, "status").CopyFrom(getattr(old, "status"))  # noqa: B009
        strategies.prepare_for_update(old, new, subresource)
        apply_defaults(new)
        return new

    async def _write_update(
        self,
        info: KindInfo,
        key: str,
        old: Message,
        new: Message,
        revision: int,
        subresource: str,
        dry_run: bool,
    ) -> Message:
        meta = meta_of(new)
        if strategies.spec_changed(old, new):
            meta.generation = meta_of(old).generation + 1
        if _same_content(old, new):
            # A no-op update writes nothing and keeps the resourceVersion, as in Kubernetes.
            return old
        if subresource not in _SERVER_SET_SUBRESOURCES:
            extra = strategies.validate_update(info, old, new) if not subresource else []
            extra += strategies.validate_any_update(old, new, subresource)
            self._check_valid(info, new, extra)
        attrs = Attributes(
            Operation.UPDATE,
            info,
            meta.namespace,
            meta.name,
            new,
            old=old,
            subresource=subresource,
            dry_run=dry_run,
        )
        await self.admission.admit(attrs)
        try:
            if dry_run:
                meta.resource_version = str(revision)
                return new
            if meta.HasField("deletion_timestamp") and not strategies.blocks_deletion(new):
                kv = await self.storage.delete(key, revision)
                await self.admission.committed(attrs)
                await self.admission.committed_delete(attrs, new)
                meta.resource_version = str(kv.mod_revision)
                return new
            kv = await self.storage.update(key, self.encode(info, new), revision)
        except ConflictError:
            await self.admission.rollback(attrs)
            raise errors.stale(info, meta.name) from None
        except KeyNotFoundError:
            await self.admission.rollback(attrs)
            raise errors.not_found(info, meta.name) from None
        except BaseException:
            await self.admission.rollback(attrs)
            raise
        await self.admission.committed(attrs)
        meta.resource_version = str(kv.mod_revision)
        return new

    async def update_with(
        self,
        info: KindInfo,
        namespace: str,
        name: str,
        mutate: Callable[[Any], None],
        *,
        subresource: str = "",
    ) -> Message:
        """Read-modify-write with retries on conflict (patches, binding, scale).

        The first attempt starts from the watch cache's copy, as Kubernetes' GuaranteedUpdate
        does: the write is conditional on that copy's revision, so a stale copy costs a conflict
        and a fresh read, never a lost update; when the cache has it right (nearly always) the
        write needs no read at all. A mutation that refuses the cached copy is asked again on a
        fresh read before its refusal stands; a write that loses to another is retried on fresh
        state until it lands.
        """
        self._check_update_subresource(info, subresource)
        namespace = namespace if info.namespaced else ""
        key = self.key(info, namespace, name)
        cached = self.caches[info.plural].objects.get(key) if info.plural in self.caches else None
        attempt = 0
        while True:
            if cached is not None:
                current, revision = cached, int(meta_of(cached).resource_version)
            else:
                kv = await self.storage.get(key)
                if kv is None:
                    raise errors.not_found(info, name)
                current, revision = self._from_kv(info, kv), kv.mod_revision
            from_cache, cached = cached is not None, None
            changed = type(current)()
            changed.CopyFrom(current)
            try:
                mutate(changed)  # its refusal stands, once judged on fresh state
                new = self._merge_for_update(info, current, changed, subresource)
            except errors.APIError:
                if from_cache:
                    continue
                raise
            try:
                written = await self._write_update(info, key, current, new, revision, subresource, False)
            except errors.APIError as exc:
                if exc.reason == "Conflict":  # someone wrote first: again, on fresh state
                    attempt += 1
                    if attempt < _UPDATE_WITH_ATTEMPTS:
                        continue
                elif from_cache:
                    continue
                raise
            if written is current:  # a no-op update answers the current state: never the cache's
                copy = type(current)()
                copy.CopyFrom(current)
                return copy
            return written

    async def delete(
        self, info: KindInfo, namespace: str, name: str, options: meta_pb2.DeleteOptions | None = None
    ) -> tuple[Message, bool]:
        """Returns the object's last state and whether it is gone (False: only marked)."""
        options = options or meta_pb2.DeleteOptions()
        namespace = namespace if info.namespaced else ""
        key = self.key(info, namespace, name)
        attrs = Attributes(Operation.DELETE, info, namespace, name, None)
        await self.admission.admit(attrs)
        for _ in range(_CONFLICT_RETRIES):
            kv = await self.storage.get(key)
            if kv is None:
                raise errors.not_found(info, name)
            obj = self._from_kv(info, kv)
            meta = meta_of(obj)
            pre = options.preconditions
            if pre.HasField("uid") and pre.uid != meta.uid:
                raise errors.conflict(
                    info,
                    name,
                    f"Precondition failed: UID in precondition: {pre.uid}, UID in object meta: {meta.uid}",
                )
            if pre.HasField("resource_version") and pre.resource_version != meta.resource_version:
                raise errors.conflict(
                    info,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{pre.resource_version}, ResourceVersion in object meta: "
                    f"{meta.resource_version}",
                )
            marked = self._mark_for_deletion(obj, options)
            try:
                if marked:
                    updated = await self.storage.update(key, self.encode(info, obj), kv.mod_revision)
                    meta.resource_version = str(updated.mod_revision)
                    return obj, False
                gone = await self.storage.delete(key, kv.mod_revision)
            except ConflictError:
                continue
            except KeyNotFoundError:
                raise errors.not_found(info, name) from None
            await self.admission.committed_delete(attrs, obj)
            meta.resource_version = str(gone.mod_revision)
            return obj, True
        raise errors.stale(info, name)

    def _mark_for_deletion(self, obj: Message, options: meta_pb2.DeleteOptions) -> bool:
        """Set deletionTimestamp when something must confirm the deletion; False: delete now."""
        meta = meta_of(obj)
        policy = options.propagation_policy
        if policy == "Orphan" and "orphan" not in meta.finalizers:
            meta.finalizers.append("orphan")
        elif policy == "Foreground" and "foregroundDeletion" not in meta.finalizers:
            meta.finalizers.append("foregroundDeletion")
        grace = 0
        if strategies.supports_graceful_deletion(obj):
            grace = strategies.default_grace_seconds(obj)
            if options.HasField("grace_period_seconds") and grace > 0:
                grace = max(options.grace_period_seconds, 0)
            if meta.HasField("deletion_grace_period_seconds"):
                grace = min(grace, meta.deletion_grace_period_seconds)
        if grace == 0 and not strategies.has_finalizers(obj):
            return False
        if not meta.HasField("deletion_timestamp") or grace < meta.deletion_grace_period_seconds:
            deadline = _now()
            deadline.seconds += grace
            meta.deletion_timestamp.CopyFrom(deadline)
            meta.deletion_grace_period_seconds = grace
        strategies.mark_terminating(obj)
        return True


def _same_content(old: Message, new: Message) -> bool:
    a, b = type(old)(), type(new)()
    a.CopyFrom(old)
    b.CopyFrom(new)
    meta_of(a).resource_version = meta_of(b).resource_version = ""
    return a == b


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromSeconds(int(time.time()))
    return stamp


def _generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))


def _parse_revision(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise errors.bad_request(f"invalid resource version: {text!r}") from None
    if value < 0:
        raise errors.bad_request(f"invalid resource version: {text!r}")
    return value


def _encode_continue(revision: int, start_after: str) -> str:
    raw = json.dumps({"v": 1, "rv": revision, "start": start_after}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        revision, start = int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.bad_request("continue key is not valid: malformed") from None
    if not start.startswith(prefix):
        raise errors.bad_request("continue key is not valid: it belongs to another list")
    return revision, start
