"""The serviceaccounts/token subresource (authentication.k8s.io/v1 TokenRequest): a JWT for one
ServiceAccount, signed with the service-account key, for the requested audiences and lifetime,
optionally bound to a Pod or Secret so that deleting that object revokes it.

This is how pods get their credentials since Kubernetes 1.24: no token Secrets are generated;
the kubelet asks for a token bound to each pod and refreshes it before it expires. Tokens are
never stored: the response carries the only copy."""

from __future__ import annotations

import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from pinnace.api.authentication.v1 import authentication_pb2
from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.admission.chain import Attributes, Operation
from services.apiserver.registry import Registry
from services.machinery import errors as ferr
from services.machinery import jwt
from services.machinery.kinds import REGISTRY

MIN_EXPIRATION_SECONDS = 600
DEFAULT_EXPIRATION_SECONDS = 3600
MAX_EXPIRATION_SECONDS = 1 << 32
TOKEN_REQUEST = REGISTRY.by_gvk("authentication.k8s.io/v1", "TokenRequest")
_BINDABLE = {"Pod": "pods", "Secret": "secrets"}


@dataclass(frozen=True)
class TokenIssuer:
    key: ec.EllipticCurvePrivateKey
    issuer: str = jwt.DEFAULT_BOUND_ISSUER
    # What a request without audiences gets: the apiserver's own (--api-audiences).
    audiences: tuple[str, ...] = (jwt.DEFAULT_BOUND_ISSUER,)


def validate(request: authentication_pb2.TokenRequest) -> list[ferr.FieldError]:
    """Kubernetes' ValidateTokenRequest, on a request with its defaults applied."""
    seconds = request.spec.expiration_seconds
    if seconds < MIN_EXPIRATION_SECONDS:
        return [
            ferr.invalid("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes")
        ]
    if seconds > MAX_EXPIRATION_SECONDS:
        return [
            ferr.invalid(
                "spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds"
            )
        ]
    return []


async def create_token(
    registry: Registry,
    issuer: TokenIssuer,
    namespace: str,
    name: str,
    request: authentication_pb2.TokenRequest,
    *,
    now: float | None = None,
) -> authentication_pb2.TokenRequest:
    """Kubernetes' TokenREST.Create: check, admit, resolve the bound object, sign."""
    accounts = REGISTRY.by_name("serviceaccounts")
    out = authentication_pb2.TokenRequest()
    out.CopyFrom(request)
    mismatch = [
        ferr.invalid(f"metadata.{field}", given, f"must match the service account {field} if specified")
        for field, given, wanted in (
            ("name", out.metadata.name, name),
            ("namespace", out.metadata.namespace, namespace),
        )
        if given and given != wanted
    ]
    if mismatch:
        raise errors.invalid(TOKEN_REQUEST, name, mismatch)
    account = await registry.get(accounts, namespace, name)
    assert isinstance(account, core_pb2.ServiceAccount)
    if not out.spec.audiences:
        out.spec.audiences.extend(issuer.audiences)
    if not out.spec.HasField("expiration_seconds"):
        out.spec.expiration_seconds = DEFAULT_EXPIRATION_SECONDS
    issued = now if now is not None else time.time()
    out.metadata.name, out.metadata.namespace = name, namespace
    out.metadata.creation_timestamp.FromSeconds(int(issued))
    out.ClearField("status")
    problems = validate(out)
    if problems:
        raise errors.invalid(TOKEN_REQUEST, "", problems)
    await registry.admission.admit(
        Attributes(Operation.CREATE, accounts, namespace, name, out, subresource="token")
    )
    bound = await _bound_object(registry, namespace, name, out.spec.bound_object_ref)
    claims = jwt.ServiceAccountClaims(namespace, name, account.metadata.uid, bound=bound)
    lifetime = int(out.spec.expiration_seconds)
    out.status.token = jwt.sign_bound(
        issuer.key,
        claims,
        issuer=issuer.issuer,
        audiences=tuple(out.spec.audiences),
        lifetime=lifetime,
        now=issued,
    )
    out.status.expiration_timestamp.FromSeconds(int(issued) + lifetime)
    return out


async def _bound_object(
    registry: Registry, namespace: str, account: str, ref: authentication_pb2.BoundObjectReference
) -> jwt.BoundObject | None:
    if not ref.kind and not ref.name:
        return None
    plural = _BINDABLE.get(ref.kind) if ref.api_version in ("", "v1") else None
    if plural is None:
        group, _, version = ref.api_version.rpartition("/")
        raise errors.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={ref.kind}")
    info = REGISTRY.by_name(plural)
    obj = await registry.get(info, namespace, ref.name)
    if isinstance(obj, core_pb2.Pod) and obj.spec.service_account_name != account:
        raise errors.bad_request(
            f'cannot bind token for serviceaccount "{account}" to pod running with different '
            "serviceaccount name."
        )
    uid = obj.metadata.uid  # type: ignore[attr-defined]
    if ref.uid and ref.uid != uid:
        raise errors.conflict(
            info,
            ref.name,
            f"the UID in the bound object reference ({ref.uid}) does not match the UID in record. "
            "The object might have been deleted and then recreated",
        )
    return jwt.BoundObject(ref.kind, ref.name, uid)
