"""Whether a verified service-account token still speaks for live objects: its ServiceAccount,
and for a bound token the Pod or Secret it was bound to, each with the uid the token names.

A signature proves the apiserver issued the token; this check is what makes deleting a pod
(or the account) revoke the tokens given to it, as Kubernetes' token validator does. Objects
marked for deletion stay usable for 60 s past their deletion time, the grace Kubernetes gives
a terminating pod's containers."""

from __future__ import annotations

import time
from collections.abc import Callable

from google.protobuf.message import Message

from services.machinery import jwt

# (plural, namespace, name) -> the object from the apiserver's watch cache, or None.
Lookup = Callable[[str, str, str], Message | None]
DELETION_GRACE_SECONDS = 60
_PLURALS = {"Pod": "pods", "Secret": "secrets"}


class TokenObjectsCheck:
    def __init__(self, lookup: Lookup, clock: Callable[[], float] = time.time) -> None:
        self.lookup = lookup
        self.clock = clock

    def __call__(self, claims: jwt.ServiceAccountClaims) -> str:
        """Why the token is no longer valid, or "" when it is."""
        account = self.lookup("serviceaccounts", claims.namespace, claims.name)
        if account is None:
            return "the token's service account no longer exists"
        problem = self._problem("service account", account, claims.uid)
        if problem or claims.bound is None:
            return problem
        bound = self.lookup(_PLURALS[claims.bound.kind], claims.namespace, claims.bound.name)
        if bound is None:
            return "service account token has been invalidated"
        return self._problem(claims.bound.kind.lower(), bound, claims.bound.uid)

    def _problem(self, what: str, obj: Message, uid: str) -> str:
        meta = obj.metadata  # type: ignore[attr-defined]
        if meta.HasField("deletion_timestamp") and (
            meta.deletion_timestamp.seconds < self.clock() - DELETION_GRACE_SECONDS
        ):
            return "service account token has been invalidated"
        if uid and meta.uid != uid:
            return f"{what} UID ({meta.uid}) does not match claim ({uid})"
        return ""
