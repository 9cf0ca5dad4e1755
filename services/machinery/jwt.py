"""Service-account tokens: compact JWS (RFC 7515/7519) signed with ES256, the claims
Kubernetes puts in them, and strict verification.

Two forms, as in Kubernetes: legacy tokens (issuer `pinnace/serviceaccount`, flat
`kubernetes.io/serviceaccount/*` claims, no audience) and bound tokens from the TokenRequest
API (the configured issuer, `aud`, and a nested `kubernetes.io` claim naming the service
account and the pod or secret the token dies with).

Written on the cryptography library alone because the format is small and every check
(algorithm pinned, signature, issuer, expiry) must be explicit: a token parser is an attack
surface, so it refuses anything it does not fully understand.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ISSUER = "pinnace/serviceaccount"
# Kubernetes makes the bound-token issuer a required flag; kubeadm's value is the default here.
DEFAULT_BOUND_ISSUER = "https://kubernetes.default.svc.cluster.local"
_HEADER = {"alg": "ES256", "typ": "JWT"}
_COORDINATE_BYTES = 32
MAX_TOKEN_BYTES = 16 * 1024


class TokenError(ValueError):
    """The token is malformed, forged, expired or not ours."""


@dataclass(frozen=True)
class BoundObject:
    """The object a bound token is tied to (a Pod or a Secret), by name and uid."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class ServiceAccountClaims:
    namespace: str
    name: str
    uid: str
    secret_name: str = ""
    # Bound tokens only: the object they die with, and their audiences.
    bound: BoundObject | None = None
    audiences: tuple[str, ...] = ()

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> tuple[str, ...]:
        return ("system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(
        c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text
    ):
        raise TokenError("token segment is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("token segment is not base64url") from exc


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TokenError("the service-account signing key must be an EC P-256 key")
    return key


def sign(
    key: ec.EllipticCurvePrivateKey,
    claims: ServiceAccountClaims,
    *,
    lifetime: float = 3600 * 24 * 365,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": ISSUER,
        "sub": claims.username,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(lifetime),
        "kubernetes.io/serviceaccount/namespace": claims.namespace,
        "kubernetes.io/serviceaccount/service-account.name": claims.name,
        "kubernetes.io/serviceaccount/service-account.uid": claims.uid,
        "kubernetes.io/serviceaccount/secret.name": claims.secret_name,
    }
    return _signed(key, payload)


def sign_bound(
    key: ec.EllipticCurvePrivateKey,
    claims: ServiceAccountClaims,
    *,
    issuer: str,
    audiences: tuple[str, ...],
    lifetime: int,
    now: float | None = None,
) -> str:
    """A TokenRequest token: Kubernetes' private claims under `kubernetes.io`, with `aud`."""
    issued = int(now if now is not None else time.time())
    private: dict[str, Any] = {
        "namespace": claims.namespace,
        "serviceaccount": {"name": claims.name, "uid": claims.uid},
    }
    if claims.bound is not None:
        private[claims.bound.kind.lower()] = {"name": claims.bound.name, "uid": claims.bound.uid}
    payload = {
        "aud": list(audiences),
        "exp": issued + lifetime,
        "iat": issued,
        "iss": issuer,
        "kubernetes.io": private,
        "nbf": issued,
        "sub": claims.username,
    }
    return _signed(key, payload)


def _signed(key: ec.EllipticCurvePrivateKey, payload: dict[str, Any]) -> str:
    signing_input = (
        f"{_b64(json.dumps(_HEADER, separators=(',', ':')).encode())}."
        f"{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
    )
    der = key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
    return f"{signing_input}.{_b64(raw)}"


def verify(
    public_key: ec.EllipticCurvePublicKey,
    token: str,
    *,
    now: float | None = None,
    issuer: str = DEFAULT_BOUND_ISSUER,
    audiences: tuple[str, ...] = (),
) -> ServiceAccountClaims:
    """The claims of a token this cluster signed; bound tokens (issuer `issuer`) must name one
    of `audiences`. Raises TokenError for anything else."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError("token is too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("token is not a compact JWS")
    header_b64, payload_b64, signature_b64 = parts
    try:
        header: Any = json.loads(_unb64(header_b64))
        payload: Any = json.loads(_unb64(payload_b64))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("token header or payload is not JSON") from exc
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise TokenError("token algorithm must be ES256")
    signature = _unb64(signature_b64)
    if len(signature) != 2 * _COORDINATE_BYTES:
        raise TokenError("token signature has the wrong length")
    der = encode_dss_signature(
        int.from_bytes(signature[:_COORDINATE_BYTES], "big"),
        int.from_bytes(signature[_COORDINATE_BYTES:], "big"),
    )
    try:
        public_key.verify(der, f"{header_b64}.{payload_b64}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise TokenError("token signature does not verify") from exc
    if not isinstance(payload, dict):
        raise TokenError("token payload is not a JSON object")
    bound = "kubernetes.io" in payload
    if payload.get("iss") != (issuer if bound else ISSUER):
        raise TokenError("token issuer is not this cluster's")
    moment = now if now is not None else time.time()
    expires, not_before = payload.get("exp"), payload.get("nbf", 0)
    if not isinstance(expires, int) or not isinstance(not_before, int):
        raise TokenError("token times are malformed")
    if moment >= expires:
        raise TokenError("token has expired")
    if moment + 60 < not_before:
        raise TokenError("token is not valid yet")
    claims = _bound_claims(payload, audiences) if bound else _legacy_claims(payload)
    if payload.get("sub") != claims.username:
        raise TokenError("token subject does not match its service account")
    return claims


def _legacy_claims(payload: dict[str, Any]) -> ServiceAccountClaims:
    fields = {
        k: payload.get(f"kubernetes.io/serviceaccount/{k}")
        for k in ("namespace", "service-account.name", "service-account.uid", "secret.name")
    }
    if (
        not all(isinstance(v, str) for v in fields.values())
        or not fields["namespace"]
        or not fields["service-account.name"]
    ):
        raise TokenError("token lacks the service account claims")
    return ServiceAccountClaims(
        str(fields["namespace"]),
        str(fields["service-account.name"]),
        str(fields["service-account.uid"]),
        str(fields["secret.name"]),
    )


def _reference(value: Any) -> tuple[str, str]:
    """(name, uid) of a `{"name": ..., "uid": ...}` claim, both non-empty strings."""
    if not isinstance(value, dict):
        raise TokenError("token lacks the service account claims")
    name, uid = value.get("name"), value.get("uid")
    if not isinstance(name, str) or not isinstance(uid, str) or not name or not uid:
        raise TokenError("token lacks the service account claims")
    return name, uid


def _bound_claims(payload: dict[str, Any], audiences: tuple[str, ...]) -> ServiceAccountClaims:
    aud = payload.get("aud")
    token_audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(token_audiences, list) or not all(isinstance(a, str) for a in token_audiences):
        raise TokenError("token audience is malformed")
    if not set(token_audiences) & set(audiences):
        raise TokenError("token audiences are not accepted by this apiserver")
    private = payload.get("kubernetes.io")
    if not isinstance(private, dict) or not isinstance(private.get("namespace"), str):
        raise TokenError("token lacks the service account claims")
    namespace = private["namespace"]
    name, uid = _reference(private.get("serviceaccount"))
    bound = [BoundObject(kind, *_reference(private[key])) for kind, key in _BOUND_KINDS if key in private]
    if not namespace or len(bound) > 1:
        raise TokenError("token lacks the service account claims")
    return ServiceAccountClaims(
        namespace, name, uid, bound=bound[0] if bound else None, audiences=tuple(token_audiences)
    )


_BOUND_KINDS = (("Pod", "pod"), ("Secret", "secret"))


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """The verification key from a PEM file holding either the public or the private key."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(data).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TokenError(f"{path} does not hold an EC P-256 key")
    return key
