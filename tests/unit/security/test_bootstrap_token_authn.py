"""The bootstrap-token authenticator on its own: which Secrets make a token valid, and why
every other one is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.auth.authn import Authenticator
from services.apiserver.auth.bootstraptoken import BootstrapTokenAuthenticator, BootstrapTokenError
from services.client import jointoken
from services.client.jointoken import BootstrapToken

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
TOKEN = BootstrapToken("abcdef", "0123456789abcdef")


def authenticator(*secrets: core_pb2.Secret) -> BootstrapTokenAuthenticator:
    stored = {(s.metadata.namespace, s.metadata.name): s for s in secrets}
    return BootstrapTokenAuthenticator(lambda ns, name: stored.get((ns, name)), clock=lambda: NOW)


def secret(ttl: int | None = 3600, **kwargs: object) -> core_pb2.Secret:
    return jointoken.token_secret(TOKEN, ttl_seconds=ttl, now=NOW, **kwargs)  # type: ignore[arg-type]


def test_valid_token_is_a_bootstrapper_with_its_extra_groups() -> None:
    user = authenticator(secret()).verify(str(TOKEN))
    assert user.name == "system:bootstrap:abcdef"
    assert user.groups == (
        "system:bootstrappers",
        "system:bootstrappers:pinnace:default-node-token",
        "system:authenticated",
    )


def test_token_without_expiration_stays_valid() -> None:
    assert authenticator(secret(ttl=None)).verify(str(TOKEN)).name == "system:bootstrap:abcdef"


def _refused(auth: BootstrapTokenAuthenticator, token: str, reason: str) -> None:
    with pytest.raises(BootstrapTokenError, match=reason):
        auth.verify(token)


def test_refusals_name_their_reason() -> None:
    _refused(authenticator(), str(TOKEN), "no secret kube-system/bootstrap-token-abcdef")
    _refused(authenticator(secret()), "abcdef.ffffffffffffffff", "the secret does not match")
    expired = jointoken.token_secret(TOKEN, ttl_seconds=60, now=NOW - dt.timedelta(hours=1))
    _refused(authenticator(expired), str(TOKEN), "expired")
    signing_only = secret()
    signing_only.data["usage-bootstrap-authentication"] = b"false"
    _refused(authenticator(signing_only), str(TOKEN), "usage-bootstrap-authentication")
    deleting = secret()
    deleting.metadata.deletion_timestamp.FromDatetime(NOW)
    _refused(authenticator(deleting), str(TOKEN), "being deleted")
    opaque = secret()
    opaque.type = "Opaque"
    _refused(authenticator(opaque), str(TOKEN), "not of type")
    escalating = secret()
    escalating.data["auth-extra-groups"] = b"system:masters"
    _refused(authenticator(escalating), str(TOKEN), "outside system:bootstrappers")


def test_only_tokens_of_bootstrap_form_are_judged() -> None:
    assert BootstrapTokenAuthenticator.applies(str(TOKEN))
    for other in ("eyJhbGciOiJFUzI1NiJ9.e30.sig", "abcdef.0123456789abcdeF", "s3cret-token"):
        assert not BootstrapTokenAuthenticator.applies(other)


def test_union_authenticator_answers_unauthorized_without_details() -> None:
    union = Authenticator(bootstrap_tokens=authenticator(secret()))
    metadata = [("authorization", "Bearer abcdef.ffffffffffffffff")]
    with pytest.raises(errors.APIError) as caught:
        union.authenticate({}, metadata)
    assert caught.value.reason == "Unauthorized"
    assert caught.value.message == "Unauthorized: invalid bootstrap token"
    good = union.authenticate({}, [("authorization", f"Bearer {TOKEN}")])
    assert good.name == "system:bootstrap:abcdef"
