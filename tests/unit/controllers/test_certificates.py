"""The certificate controllers: csrsigning issues what is approved and within its signer's
rules, csrapproving approves only recognised kubelet requests, tokencleaner removes expired
bootstrap tokens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pinnace.api.certificates.v1 import certificates_pb2
from services.client import jointoken
from services.client.client import Client
from services.client.errors import NotFoundError
from services.controllers.base import Settings
from services.controllers.csrapproving import CSRApprovingController, recognized
from services.controllers.csrsigning import CSRSigningController, SigningCA, SigningRefusedError, sign
from services.controllers.tokencleaner import TokenCleaner
from services.machinery import pki
from tests.unit.controllers.fakes import Harness, until

CSR = certificates_pb2.CertificateSigningRequest
KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
CLIENT = "kubernetes.io/kube-apiserver-client"


def make_csr(
    name: str = "node-csr",
    *,
    cn: str = "system:node:a",
    orgs: tuple[str, ...] = ("system:nodes",),
    signer: str = KUBELET,
    usages: tuple[str, ...] = ("digital signature", "client auth"),
    username: str = "",
) -> CSR:
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    request = (
        x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes)).sign(key, hashes.SHA256())
    )
    csr = CSR()
    csr.metadata.name = name
    csr.spec.request = request.public_bytes(serialization.Encoding.PEM)
    csr.spec.signer_name = signer
    csr.spec.usages.extend(usages)
    csr.spec.username = username
    return csr


@pytest.fixture
def ca() -> pki.KeyPair:
    return pki.new_ca()


def signing_ca(pair: pki.KeyPair) -> SigningCA:
    return SigningCA(pair.certificate, pair.private_key)


# ---------------------------------------------------------------------- signing


def test_signed_kubelet_certificate_verifies_with_identity_and_usages(ca: pki.KeyPair) -> None:
    now = dt.datetime.now(dt.UTC)
    cert = x509.load_pem_x509_certificate(sign(signing_ca(ca), make_csr(), dt.timedelta(days=365), now))
    pki.verify_signed_by(ca.certificate, cert)
    assert pki.identity_of(cert) == ("system:node:a", ("system:nodes",))
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment and not usage.key_cert_sign
    extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(extended) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=365, minutes=5)


def test_validity_is_the_shorter_of_duration_expiration_and_the_ca(ca: pki.KeyPair) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    short = make_csr()
    short.spec.expiration_seconds = 3600
    cert = x509.load_pem_x509_certificate(sign(signing_ca(ca), short, dt.timedelta(days=365), now))
    assert cert.not_valid_after_utc == now + dt.timedelta(hours=1)
    long = x509.load_pem_x509_certificate(sign(signing_ca(ca), make_csr(), dt.timedelta(days=36500), now))
    assert long.not_valid_after_utc == ca.certificate.not_valid_after_utc


@pytest.mark.parametrize(
    ("csr", "reason"),
    [
        (make_csr(orgs=("system:masters",)), "subject organization is not system:nodes"),
        (make_csr(cn="alice"), "subject common name does not begin with system:node:"),
        (make_csr(usages=("digital signature", "server auth")), "usages did not match"),
        (make_csr(signer=CLIENT, cn="eve", orgs=("system:masters",)), "O=system:masters is not allowed"),
        (make_csr(signer=CLIENT, cn="eve", orgs=(), usages=("server auth",)), "must include client auth"),
    ],
)
def test_signer_refuses_requests_outside_its_rules(ca: pki.KeyPair, csr: CSR, reason: str) -> None:
    with pytest.raises(SigningRefusedError, match=reason):
        sign(signing_ca(ca), csr, dt.timedelta(days=1))


def test_signing_ca_must_be_a_matching_pair(ca: pki.KeyPair, tmp_path: Path) -> None:
    ca.write(tmp_path, "signer")
    assert SigningCA.load(tmp_path / "signer.crt", tmp_path / "signer.key").certificate == ca.certificate
    pki.new_ca().write(tmp_path, "other")
    with pytest.raises(ValueError, match="is not the key of"):
        SigningCA.load(tmp_path / "signer.crt", tmp_path / "other.key")


def test_plain_client_certificate_for_a_user(ca: pki.KeyPair) -> None:
    csr = make_csr(signer=CLIENT, cn="alice", orgs=("dev",))
    cert = x509.load_pem_x509_certificate(sign(signing_ca(ca), csr, dt.timedelta(days=1)))
    assert pki.identity_of(cert) == ("alice", ("dev",))


async def _approve(client: Client, name: str) -> None:
    await client.patch(
        "certificatesigningrequests",
        name,
        {"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "Test"}]}},
        patch_type="merge",
        subresource="approval",
    )


async def _csr(client: Client, name: str) -> CSR:
    found = await client.get("certificatesigningrequests", name)
    assert isinstance(found, CSR)
    return found


async def test_signing_controller_issues_approved_and_fails_refused(
    client: Client, ca: pki.KeyPair, tmp_path: Path
) -> None:
    ca.write(tmp_path, "signer")
    settings = Settings(
        cluster_signing_cert_file=str(tmp_path / "signer.crt"),
        cluster_signing_key_file=str(tmp_path / "signer.key"),
        cluster_signing_duration=7200,
    )
    harness = Harness(client, settings)
    harness.add(CSRSigningController)
    await harness.start()
    try:
        await client.create(make_csr("pending"))
        await client.create(make_csr("good"))
        await client.create(make_csr("bad", orgs=("system:masters",)))
        await client.create(make_csr("other-signer", signer="example.com/mine"))
        for name in ("good", "bad", "other-signer"):
            await _approve(client, name)
        await until(lambda: _issued(client, "good"))
        good = await _csr(client, "good")
        cert = x509.load_pem_x509_certificate(good.status.certificate)
        pki.verify_signed_by(ca.certificate, cert)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=2, minutes=5)
        await until(lambda: _failed(client, "bad"))
        bad = await _csr(client, "bad")
        failed = next(c for c in bad.status.conditions if c.type == "Failed")
        assert failed.reason == "SignerValidationFailure" and not bad.status.certificate
        for untouched in ("pending", "other-signer"):
            csr = await _csr(client, untouched)
            assert not csr.status.certificate and all(c.type != "Failed" for c in csr.status.conditions)
    finally:
        await harness.stop()


async def _issued(client: Client, name: str) -> bool:
    return bool((await _csr(client, name)).status.certificate)


async def _failed(client: Client, name: str) -> bool:
    return any(c.type == "Failed" for c in (await _csr(client, name)).status.conditions)


# ---------------------------------------------------------------------- approving


def test_recognized_requests() -> None:
    assert recognized(make_csr(username="system:node:a")) == ["selfnodeclient", "nodeclient"]
    assert recognized(make_csr(username="system:bootstrap:abcdef")) == ["nodeclient"]
    assert recognized(make_csr(signer=CLIENT, username="system:node:a")) == []
    assert recognized(make_csr(orgs=("system:nodes", "system:masters"))) == []
    garbled = make_csr()
    garbled.spec.request = b"garbage"
    assert recognized(garbled) == []


async def test_approving_controller_approves_recognized_kubelet_requests_only(client: Client) -> None:
    # The in-process server authorises everything, so every recognised request passes its
    # SubjectAccessReview; refusals by RBAC are tested in tests/unit/security/test_join.py.
    harness = Harness(client)
    harness.add(CSRApprovingController)
    await client.create(make_csr("user-cert", signer=CLIENT, cn="alice", orgs=()))
    await client.create(make_csr("kubelet"))
    await harness.start()
    try:
        await until(lambda: _approved(client, "kubelet"))
        approved = next(c for c in (await _csr(client, "kubelet")).status.conditions if c.type == "Approved")
        assert approved.reason == "AutoApproved"
        assert not (await _csr(client, "user-cert")).status.conditions
    finally:
        await harness.stop()


async def _approved(client: Client, name: str) -> bool:
    return any(c.type == "Approved" for c in (await _csr(client, name)).status.conditions)


# ---------------------------------------------------------------------- token cleaning


async def test_token_cleaner_deletes_expired_tokens_when_they_expire(client: Client) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = jointoken.generate()
    await client.create(jointoken.token_secret(expired, ttl_seconds=60, now=now - dt.timedelta(hours=1)))
    soon = jointoken.generate()
    await client.create(jointoken.token_secret(soon, ttl_seconds=3600, now=now - dt.timedelta(seconds=3599)))
    lasting = jointoken.generate()
    await client.create(jointoken.token_secret(lasting, ttl_seconds=3600))
    forever = jointoken.generate()
    await client.create(jointoken.token_secret(forever, ttl_seconds=None))
    harness = Harness(client)
    harness.add(TokenCleaner)
    await harness.start()
    try:
        await until(lambda: _gone(client, expired.secret_name))
        await until(lambda: _gone(client, soon.secret_name))
        for kept in (lasting, forever):
            await client.get("secrets", kept.secret_name, "kube-system")
    finally:
        await harness.stop()


async def _gone(client: Client, name: str) -> bool:
    try:
        await client.get("secrets", name, "kube-system")
    except NotFoundError:
        return True
    return False
