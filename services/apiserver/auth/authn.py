"""Authentication: x509 client certificates (CN = user, O = groups), a static bearer-token
file, and service-account tokens (ES256 JWTs signed by the service-account key).
Anonymous requests are refused unless explicitly allowed."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from services.apiserver import errors
from services.apiserver.auth.bootstraptoken import BootstrapTokenAuthenticator, BootstrapTokenError
from services.apiserver.auth.user import ANONYMOUS_USER, AUTHENTICATED, UserInfo
from services.machinery import jwt, pki

log = structlog.get_logger("apiserver")

# Checks that the objects a token names still exist with the uids it names: its service account
# (deleting the account revokes its tokens) and, for a bound token, its pod or secret. Returns
# why the token is no longer valid, or "" when it is.
ServiceAccountCheck = Callable[[jwt.ServiceAccountClaims], str]


def load_token_file(path: Path) -> dict[str, UserInfo]:
    """Kubernetes' static token file: CSV `token,user,uid,"group1,group2"`."""
    tokens: dict[str, UserInfo] = {}
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 3 or not row[0] or not row[1]:
                raise ValueError(f"{path}:{number}: expected token,user,uid[,groups]")
            groups = tuple(g for g in (row[3].split(",") if len(row) > 3 else []) if g)
            tokens[row[0]] = UserInfo(row[1], groups, row[2])
    return tokens


@dataclass
class Authenticator:
    static_tokens: Mapping[str, UserInfo] = field(default_factory=dict)
    service_account_key: ec.EllipticCurvePublicKey | None = None
    service_account_check: ServiceAccountCheck | None = None
    anonymous: bool = False
    # --enable-bootstrap-token-auth: `<id>.<secret>` tokens backed by kube-system Secrets.
    bootstrap_tokens: BootstrapTokenAuthenticator | None = None
    # Bound tokens (TokenRequest) carry this issuer and must name one of these audiences.
    service_account_issuer: str = jwt.DEFAULT_BOUND_ISSUER
    api_audiences: tuple[str, ...] = (jwt.DEFAULT_BOUND_ISSUER,)
    # False only for a plaintext development server: every request is then the anonymous
    # user in system:masters' stead and authorisation must be AlwaysAllow.
    enabled: bool = True

    def authenticate(
        self, auth_context: Mapping[str, Sequence[bytes]], metadata: Sequence[tuple[str, str | bytes]]
    ) -> UserInfo:
        if not self.enabled:
            return ANONYMOUS_USER
        # Kubernetes' union order: a verified client certificate first, then bearer tokens.
        certs = auth_context.get("x509_pem_cert")
        if certs:
            return _from_certificate(certs[0])
        token = _bearer_token(metadata)
        if token is not None:
            return self._from_token(token)
        if self.anonymous:
            return ANONYMOUS_USER
        raise errors.APIError("Unauthorized", "Unauthorized: no client certificate or bearer token")

    def _from_token(self, token: str) -> UserInfo:
        user = self.static_tokens.get(token)
        if user is not None:
            return UserInfo(user.name, (*user.groups, AUTHENTICATED), user.uid)
        if self.bootstrap_tokens is not None and self.bootstrap_tokens.applies(token):
            try:
                return self.bootstrap_tokens.verify(token)
            except BootstrapTokenError as exc:
                log.info("bootstrap token refused", reason=str(exc))
                raise errors.APIError("Unauthorized", "Unauthorized: invalid bootstrap token") from None
        if self.service_account_key is not None:
            try:
                claims = jwt.verify(
                    self.service_account_key,
                    token,
                    issuer=self.service_account_issuer,
                    audiences=self.api_audiences,
                )
            except jwt.TokenError as exc:
                raise errors.APIError("Unauthorized", f"Unauthorized: invalid bearer token: {exc}") from None
            problem = self.service_account_check(claims) if self.service_account_check is not None else ""
            if problem:
                raise errors.APIError("Unauthorized", f"Unauthorized: {problem}")
            return UserInfo(claims.username, claims.groups, claims.uid)
        raise errors.APIError("Unauthorized", "Unauthorized: invalid bearer token")


def _bearer_token(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise errors.APIError("Unauthorized", "Unauthorized: malformed authorization header")
    return None


@lru_cache(maxsize=1024)
def _from_certificate(pem: bytes) -> UserInfo:
    """The TLS layer already verified the chain against the client CA; read the identity.

    Remembered per certificate: a client sends the same one on every request, and parsing it
    costs more than the rest of authentication. UserInfo is immutable."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
        name, groups = pki.identity_of(cert)
    except ValueError as exc:
        raise errors.APIError("Unauthorized", f"Unauthorized: unusable client certificate: {exc}") from None
    return UserInfo(name, (*groups, AUTHENTICATED))
