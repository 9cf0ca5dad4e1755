"""Bootstrap-token and join-token formats, and the bootstrap-token Secret both ways."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from services.client import jointoken
from services.client.jointoken import BootstrapToken
from services.machinery import pki


def test_generated_tokens_have_kubernetes_format_and_differ() -> None:
    tokens = {str(jointoken.generate()) for _ in range(20)}
    assert len(tokens) == 20
    assert all(re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", t) for t in tokens)


def test_parse_round_trip() -> None:
    token = jointoken.parse(" abcdef.0123456789abcdef\n")
    assert token == BootstrapToken("abcdef", "0123456789abcdef")
    assert str(token) == "abcdef.0123456789abcdef"
    assert "0123456789abcdef" not in repr(token)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abcdef",
        "abcdef.0123456789abcde",
        "ABCDEF.0123456789abcdef",
        "abcdef:0123456789abcdef",
        "abcde.0123456789abcdefg",
    ],
)
def test_parse_refuses_bad_tokens_without_echoing_them(text: str) -> None:
    with pytest.raises(ValueError, match=r"not of the form") as caught:
        jointoken.parse(text)
    assert "0123456789abcde" not in str(caught.value)


def test_constructor_validates_parts() -> None:
    with pytest.raises(ValueError, match="token id"):
        BootstrapToken("ABCDEF", "0123456789abcdef")
    with pytest.raises(ValueError, match="secret"):
        BootstrapToken("abcdef", "short")


def test_token_secret_is_kubernetes_bootstrap_token_secret() -> None:
    token = BootstrapToken("abcdef", "0123456789abcdef")
    now = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    secret = jointoken.token_secret(token, ttl_seconds=3600, description="for node-a", now=now)
    assert (secret.metadata.namespace, secret.metadata.name) == ("kube-system", "bootstrap-token-abcdef")
    assert secret.type == "bootstrap.kubernetes.io/token"
    assert {k: v.decode() for k, v in secret.data.items()} == {
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "expiration": "2030-01-02T04:04:05Z",
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
        "auth-extra-groups": "system:bootstrappers:pinnace:default-node-token",
        "description": "for node-a",
    }
    record = jointoken.read_token_secret(secret)
    assert record.token == token
    assert record.expiration == dt.datetime(2030, 1, 2, 4, 4, 5, tzinfo=dt.UTC)
    assert record.usages == ("authentication", "signing")
    assert record.groups == ("system:bootstrappers:pinnace:default-node-token",)
    assert not record.expired(now) and record.expired(now + dt.timedelta(hours=2))


def test_token_secret_without_ttl_never_expires() -> None:
    secret = jointoken.token_secret(jointoken.generate(), ttl_seconds=None, groups=())
    assert "expiration" not in secret.data and "auth-extra-groups" not in secret.data
    assert jointoken.read_token_secret(secret).expiration is None


@pytest.mark.parametrize("group", ["system:nodes", "system:bootstrappers:", "system:bootstrappers:Bad"])
def test_token_secret_refuses_groups_outside_bootstrappers(group: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        jointoken.token_secret(jointoken.generate(), ttl_seconds=60, groups=[group])


def test_read_token_secret_refuses_malformed_secrets() -> None:
    secret = jointoken.token_secret(BootstrapToken("abcdef", "0123456789abcdef"), ttl_seconds=60)
    wrong_name = type(secret)()
    wrong_name.CopyFrom(secret)
    wrong_name.metadata.name = "bootstrap-token-zzzzzz"
    with pytest.raises(ValueError, match="does not hold token id"):
        jointoken.read_token_secret(wrong_name)
    bad_expiry = type(secret)()
    bad_expiry.CopyFrom(secret)
    bad_expiry.data["expiration"] = b"tomorrow"
    with pytest.raises(ValueError, match="malformed expiration"):
        jointoken.read_token_secret(bad_expiry)
    opaque = type(secret)()
    opaque.CopyFrom(secret)
    opaque.type = "Opaque"
    with pytest.raises(ValueError, match="not of type"):
        jointoken.read_token_secret(opaque)


def test_join_token_pins_the_ca_der_hash() -> None:
    ca = pki.new_ca()
    token = BootstrapToken("abcdef", "0123456789abcdef")
    text = jointoken.format_join_token(ca.cert_pem, token)
    der = x509.load_pem_x509_certificate(ca.cert_pem).public_bytes(serialization.Encoding.DER)
    assert text == f"K10{hashlib.sha256(der).hexdigest()}::abcdef.0123456789abcdef"
    assert jointoken.parse_join_token(text) == (hashlib.sha256(der).hexdigest(), token)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abcdef.0123456789abcdef", "not of the form"),
        ("K10abc::abcdef.0123456789abcdef", "64 hexadecimal"),
        ("K10" + "g" * 64 + "::abcdef.0123456789abcdef", "64 hexadecimal"),
        ("K10" + "a" * 64 + "::abcdef", "bootstrap token is not of the form"),
        ("K10" + "a" * 64 + "abcdef.0123456789abcdef", "not of the form"),
    ],
)
def test_parse_join_token_refuses_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        jointoken.parse_join_token(text)


def test_cluster_info_configmap_holds_ca_and_server_but_no_credentials() -> None:
    ca = pki.new_ca()
    configmap = jointoken.cluster_info_configmap(ca.cert_pem, "10.0.0.1:6443")
    assert (configmap.metadata.namespace, configmap.metadata.name) == ("kube-public", "cluster-info")
    kubeconfig = configmap.data["kubeconfig"]
    assert "https://10.0.0.1:6443" in kubeconfig and "users: []" in kubeconfig


def test_host_port_brackets_ipv6() -> None:
    assert jointoken.host_port("10.0.0.1", 6443) == "10.0.0.1:6443"
    assert jointoken.host_port("::1", 6443) == "[::1]:6443"
