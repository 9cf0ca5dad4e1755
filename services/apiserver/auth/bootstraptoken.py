"""The bootstrap-token authenticator (--enable-bootstrap-token-auth): a bearer token
`<id>.<secret>` is valid while the Secret kube-system/bootstrap-token-<id> holds that secret,
allows authentication (usage-bootstrap-authentication), has not expired and is not being
deleted. The user is `system:bootstrap:<id>` in system:bootstrappers plus the Secret's
auth-extra-groups, which RBAC lets create CertificateSigningRequests and little else.

Secrets are read from the apiserver's watch cache, so a deleted token stops working at once.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections.abc import Callable

from pinnace.api.core.v1 import core_pb2
from services.apiserver.auth.user import AUTHENTICATED, UserInfo
from services.client import jointoken

# (namespace, name) -> the cached Secret, or None.
SecretLookup = Callable[[str, str], core_pb2.Secret | None]
USER_PREFIX = "system:bootstrap:"
_FORMAT = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")


class BootstrapTokenError(Exception):
    """Why a well-formed bootstrap token is refused (logged, never sent to the client)."""


class BootstrapTokenAuthenticator:
    def __init__(self, lookup: SecretLookup, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.lookup = lookup
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    @staticmethod
    def applies(token: str) -> bool:
        """Only tokens of the bootstrap form are this authenticator's to judge."""
        return _FORMAT.match(token) is not None

    def verify(self, token: str) -> UserInfo:
        presented = jointoken.parse(token)
        secret = self.lookup(jointoken.TOKEN_NAMESPACE, presented.secret_name)
        if secret is None:
            raise BootstrapTokenError(f"no secret {jointoken.TOKEN_NAMESPACE}/{presented.secret_name}")
        if secret.metadata.HasField("deletion_timestamp"):
            raise BootstrapTokenError(f"secret {presented.secret_name} is being deleted")
        try:
            record = jointoken.read_token_secret(secret)
        except ValueError as exc:
            raise BootstrapTokenError(str(exc)) from None
        if not hmac.compare_digest(record.token.secret.encode(), presented.secret.encode()):
            raise BootstrapTokenError(f"token {presented.token_id}: the secret does not match")
        if record.expired(self.clock()):
            raise BootstrapTokenError(f"token {presented.token_id} expired at {record.expiration}")
        if "authentication" not in record.usages:
            raise BootstrapTokenError(
                f"token {presented.token_id} is not marked usage-bootstrap-authentication=true"
            )
        groups = (jointoken.BOOTSTRAPPERS_GROUP, *record.groups, AUTHENTICATED)
        return UserInfo(USER_PREFIX + presented.token_id, tuple(dict.fromkeys(groups)))
