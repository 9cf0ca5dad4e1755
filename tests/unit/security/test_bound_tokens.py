"""Bound (TokenRequest) tokens at the JWT level, and the check that ties them to live objects."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnace.api.core.v1 import core_pb2
from services.apiserver.auth.serviceaccount_tokens import TokenObjectsCheck
from services.machinery import jwt, pki

KEY = jwt.load_private_key(pki.new_signing_key())
ISSUER = "https://kubernetes.default.svc.cluster.local"
POD = jwt.BoundObject("Pod", "web-1", "pod-uid")
CLAIMS = jwt.ServiceAccountClaims("team-a", "builder", "sa-uid", bound=POD, audiences=(ISSUER,))


def bound(claims: jwt.ServiceAccountClaims = CLAIMS, **kwargs: Any) -> str:
    options: dict[str, Any] = {"issuer": ISSUER, "audiences": (ISSUER,), "lifetime": 3600, "now": 1_000_000}
    options.update(kwargs)
    return jwt.sign_bound(KEY, claims, **options)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: dict[str, Any]) -> str:
    header = _b64(b'{"alg":"ES256","typ":"JWT"}')
    body = _b64(json.dumps(payload).encode())
    r, s = decode_dss_signature(KEY.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{header}.{body}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def test_round_trip_with_the_pod_binding() -> None:
    claims = jwt.verify(KEY.public_key(), bound(), issuer=ISSUER, audiences=(ISSUER,), now=1_000_010)
    assert claims == CLAIMS
    assert claims.username == "system:serviceaccount:team-a:builder"


def test_audience_issuer_and_expiry_are_enforced() -> None:
    token = bound()
    with pytest.raises(jwt.TokenError, match="audiences are not accepted"):
        jwt.verify(KEY.public_key(), token, issuer=ISSUER, audiences=("vault",), now=1_000_010)
    with pytest.raises(jwt.TokenError, match="issuer"):
        jwt.verify(KEY.public_key(), token, issuer="https://elsewhere", audiences=(ISSUER,), now=1_000_010)
    with pytest.raises(jwt.TokenError, match="expired"):
        jwt.verify(KEY.public_key(), token, issuer=ISSUER, audiences=(ISSUER,), now=1_003_600)
    # A legacy token is not mistaken for a bound one, and the reverse.
    legacy = jwt.sign(KEY, jwt.ServiceAccountClaims("team-a", "builder", "sa-uid"))
    assert jwt.verify(KEY.public_key(), legacy, issuer=ISSUER, audiences=(ISSUER,)).bound is None


@pytest.mark.parametrize(
    "private",
    [
        {"namespace": "team-a"},
        {"namespace": "", "serviceaccount": {"name": "builder", "uid": "u"}},
        {"namespace": "team-a", "serviceaccount": {"name": "builder"}},
        {"namespace": "team-a", "serviceaccount": {"name": "builder", "uid": "u"}, "pod": {"name": "p"}},
        {
            "namespace": "team-a",
            "serviceaccount": {"name": "builder", "uid": "u"},
            "pod": {"name": "p", "uid": "1"},
            "secret": {"name": "s", "uid": "2"},
        },
        "not an object",
    ],
)
def test_malformed_private_claims_are_refused(private: Any) -> None:
    payload = {
        "iss": ISSUER,
        "aud": [ISSUER],
        "sub": "system:serviceaccount:team-a:builder",
        "iat": 1_000_000,
        "nbf": 1_000_000,
        "exp": 1_003_600,
        "kubernetes.io": private,
    }
    with pytest.raises(jwt.TokenError, match="lacks the service account claims"):
        jwt.verify(KEY.public_key(), signed(payload), issuer=ISSUER, audiences=(ISSUER,), now=1_000_010)


@settings(max_examples=150)
@given(
    st.recursive(
        st.one_of(st.none(), st.integers(), st.text(max_size=8)),
        lambda inner: st.dictionaries(
            st.sampled_from(["namespace", "serviceaccount", "pod", "name", "uid"]), inner
        ),
        max_leaves=8,
    ),
    st.one_of(st.none(), st.text(max_size=8), st.lists(st.text(max_size=8), max_size=3)),
)
def test_fuzzed_bound_claims_never_crash(private: Any, audience: Any) -> None:
    payload = {"iss": ISSUER, "aud": audience, "sub": "x", "exp": 2_000_000, "kubernetes.io": private}
    with pytest.raises(jwt.TokenError):
        jwt.verify(KEY.public_key(), signed(payload), issuer=ISSUER, audiences=(ISSUER,), now=1_000_010)


def _object(kind: type, name: str, uid: str, deleted_at: int = 0) -> Any:
    obj = kind()
    obj.metadata.name, obj.metadata.namespace, obj.metadata.uid = name, "team-a", uid
    if deleted_at:
        obj.metadata.deletion_timestamp.FromSeconds(deleted_at)
    return obj


def test_the_objects_check() -> None:
    store: dict[tuple[str, str], Any] = {
        ("serviceaccounts", "builder"): _object(core_pb2.ServiceAccount, "builder", "sa-uid"),
        ("pods", "web-1"): _object(core_pb2.Pod, "web-1", "pod-uid"),
    }
    check = TokenObjectsCheck(lambda plural, _ns, name: store.get((plural, name)), clock=lambda: 1_000_000)
    assert check(CLAIMS) == ""
    store[("pods", "web-1")] = _object(core_pb2.Pod, "web-1", "pod-uid", deleted_at=999_950)
    assert check(CLAIMS) == "", "a terminating pod's token lives 60 s past its deletion time"
    store[("pods", "web-1")] = _object(core_pb2.Pod, "web-1", "pod-uid", deleted_at=999_900)
    assert check(CLAIMS) == "service account token has been invalidated"
    store[("pods", "web-1")] = _object(core_pb2.Pod, "web-1", "another")
    assert check(CLAIMS) == "pod UID (another) does not match claim (pod-uid)"
    del store[("pods", "web-1")]
    assert check(CLAIMS) == "service account token has been invalidated"
    store[("serviceaccounts", "builder")] = _object(core_pb2.ServiceAccount, "builder", "new-uid")
    assert check(CLAIMS) == "service account UID (new-uid) does not match claim (sa-uid)"
    del store[("serviceaccounts", "builder")]
    assert check(CLAIMS) == "the token's service account no longer exists"
