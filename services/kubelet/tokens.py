"""The kubelet's service-account token manager (Kubernetes' pkg/kubelet/token): bound tokens
obtained with TokenRequest, one per (account, audiences, lifetime, bound pod), kept until they
need a refresh: once 80% of their lifetime has passed, or 24 hours after they were issued,
whichever comes first (with up to 10 s of jitter so a node's pods do not all refresh at once).

Projected volumes ask on every sync, so a token file is rewritten shortly after its refresh
point and long before it expires. If the apiserver cannot be reached, a token that has not
expired yet is still handed out: the pod keeps working through an outage."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from pinnace.api.authentication.v1 import authentication_pb2

log = structlog.get_logger("kubelet")
MAX_TTL_SECONDS = 24 * 3600
MAX_JITTER_SECONDS = 10.0
REFRESH_FRACTION = 0.2

# (namespace, service account, request) -> the apiserver's answer.
Requester = Callable[[str, str, authentication_pb2.TokenRequest], Awaitable[authentication_pb2.TokenRequest]]


@dataclass(frozen=True)
class _Key:
    namespace: str
    account: str
    audiences: tuple[str, ...]
    expiration_seconds: int
    bound_kind: str
    bound_name: str
    bound_uid: str


def _key(namespace: str, account: str, request: authentication_pb2.TokenRequest) -> _Key:
    ref = request.spec.bound_object_ref
    return _Key(
        namespace,
        account,
        tuple(request.spec.audiences),
        request.spec.expiration_seconds,
        ref.kind,
        ref.name,
        ref.uid,
    )


class TokenManager:
    def __init__(
        self,
        request: Requester,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = lambda: random.uniform(0.0, MAX_JITTER_SECONDS),
    ) -> None:
        self.request = request
        self.clock = clock
        self.jitter = jitter
        self._cache: dict[_Key, authentication_pb2.TokenRequest] = {}

    def needs_refresh(self, answer: authentication_pb2.TokenRequest) -> bool:
        now = self.clock()
        expires = answer.status.expiration_timestamp.seconds
        lifetime = answer.spec.expiration_seconds
        issued = expires - lifetime
        jitter = self.jitter()
        if now > issued + MAX_TTL_SECONDS - jitter:
            return True
        return now > expires - lifetime * REFRESH_FRACTION - jitter

    async def token(
        self, namespace: str, account: str, request: authentication_pb2.TokenRequest
    ) -> authentication_pb2.TokenRequest:
        """A valid token for the request: the cached one, or a fresh one when it is due."""
        key = _key(namespace, account, request)
        cached = self._cache.get(key)
        if cached is not None and not self.needs_refresh(cached):
            return cached
        try:
            fresh = await self.request(namespace, account, request)
        except Exception as exc:
            if cached is not None and self.clock() < cached.status.expiration_timestamp.seconds:
                log.warning(
                    "token refresh failed; the current token is still valid",
                    namespace=namespace,
                    service_account=account,
                    error=str(exc),
                )
                return cached
            raise
        self._cache[key] = fresh
        return fresh

    def forget(self, pod_uid: str) -> None:
        """Drop the tokens bound to a pod that is gone (and any that expired)."""
        now = self.clock()
        for key, answer in list(self._cache.items()):
            if key.bound_uid == pod_uid or answer.status.expiration_timestamp.seconds <= now:
                del self._cache[key]

    def __len__(self) -> int:
        return len(self._cache)
