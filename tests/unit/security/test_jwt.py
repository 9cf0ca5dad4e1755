import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.machinery import jwt, pki

KEY = jwt.load_private_key(pki.new_signing_key())
OTHER = jwt.load_private_key(pki.new_signing_key())
CLAIMS = jwt.ServiceAccountClaims("team-a", "builder", "uid-1", "builder-token")


def test_round_trip() -> None:
    token = jwt.sign(KEY, CLAIMS)
    claims = jwt.verify(KEY.public_key(), token)
    assert claims == CLAIMS
    assert claims.username == "system:serviceaccount:team-a:builder"
    assert "system:serviceaccounts:team-a" in claims.groups


def test_wrong_key_expired_and_not_yet_valid() -> None:
    token = jwt.sign(KEY, CLAIMS, lifetime=60, now=1_000_000)
    with pytest.raises(jwt.TokenError, match="signature"):
        jwt.verify(OTHER.public_key(), token, now=1_000_010)
    with pytest.raises(jwt.TokenError, match="expired"):
        jwt.verify(KEY.public_key(), token, now=1_000_061)
    with pytest.raises(jwt.TokenError, match="not valid yet"):
        jwt.verify(KEY.public_key(), token, now=999_000)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_tampering_and_algorithm_confusion_are_refused() -> None:
    header, payload, signature = jwt.sign(KEY, CLAIMS).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["kubernetes.io/serviceaccount/namespace"] = "kube-system"
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(jwt.TokenError, match="signature"):
        jwt.verify(KEY.public_key(), forged)
    none_header = _b64(b'{"alg":"none"}')
    none_alg = f"{none_header}.{payload}."
    with pytest.raises(jwt.TokenError):
        jwt.verify(KEY.public_key(), none_alg)
    hs_header = _b64(b'{"alg":"HS256"}')
    hs = f"{hs_header}.{payload}.{signature}"
    with pytest.raises(jwt.TokenError, match="ES256"):
        jwt.verify(KEY.public_key(), hs)


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_arbitrary_text_never_verifies_and_never_crashes(text: str) -> None:
    with pytest.raises(jwt.TokenError):
        jwt.verify(KEY.public_key(), text)


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=120), min_size=3, max_size=3))
def test_arbitrary_segments_never_verify(parts: list[bytes]) -> None:
    with pytest.raises(jwt.TokenError):
        jwt.verify(KEY.public_key(), ".".join(_b64(p) for p in parts))


@settings(max_examples=100)
@given(
    st.dictionaries(
        st.text(max_size=20), st.one_of(st.integers(), st.text(max_size=20), st.none()), max_size=8
    )
)
def test_signed_but_malformed_claims_are_refused(payload: dict) -> None:
    header = _b64(b'{"alg":"ES256","typ":"JWT"}')
    body = _b64(json.dumps(payload).encode())
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(KEY.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256())))
    token = f"{header}.{body}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    with pytest.raises(jwt.TokenError):
        jwt.verify(KEY.public_key(), token)
