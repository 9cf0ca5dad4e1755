"""CertificateSigningRequest validation: every bad field reported with its path and Kubernetes'
wording, and the update rules (approval and certificates cannot be taken back)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pinnace.api.certificates.v1 import certificates_pb2
from services.machinery import pki
from services.machinery.validation import validate
from services.machinery.validation.certificates import validate_csr_update

CSR = certificates_pb2.CertificateSigningRequest


def request_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:node:a")])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


def valid() -> CSR:
    csr = CSR()
    csr.metadata.name = "node-csr-a"
    csr.spec.request = request_pem()
    csr.spec.signer_name = "kubernetes.io/kube-apiserver-client-kubelet"
    csr.spec.usages.extend(["digital signature", "client auth"])
    return csr


def messages(csr: CSR) -> list[str]:
    return [str(e) for e in validate(csr)]


def test_valid_request_passes() -> None:
    assert messages(valid()) == []


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (b"", 'spec.request: Invalid value: "<request data>": PEM block type must be CERTIFICATE REQUEST'),
        (b"invalid data", "PEM block type must be CERTIFICATE REQUEST"),
        (pki.new_ca().cert_pem, "PEM block type must be CERTIFICATE REQUEST"),
        (
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "invalid certificate request",
        ),
    ],
)
def test_bad_request_pem(request_bytes: bytes, expected: str) -> None:
    csr = valid()
    csr.spec.request = request_bytes
    found = messages(csr)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    ("signer", "expected"),
    [
        ("", "spec.signerName: Required value"),
        (
            "an-invalid-signer-name",
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ),
        ("a.com/b/c", "must be a fully qualified domain and path"),
        ("example/some-signer-name", "should be a domain with at least two segments separated by dots"),
        ("example.com/something-", 'validating label "something-"'),
    ],
)
def test_bad_signer_names(signer: str, expected: str) -> None:
    csr = valid()
    csr.spec.signer_name = signer
    found = messages(csr)
    assert len(found) == 1 and expected in found[0], found


def test_usages_expiration_and_conditions() -> None:
    csr = valid()
    del csr.spec.usages[:]
    csr.spec.usages.extend(["unknown", "unknown"])
    csr.spec.expiration_seconds = 60
    csr.status.conditions.add(type="Approved", status="True")
    csr.status.conditions.add(type="Denied", status="Maybe")
    found = messages(csr)
    assert any(m.startswith('spec.usages[0]: Unsupported value: "unknown"') for m in found)
    assert 'spec.usages[1]: Duplicate value: "unknown"' in found
    assert any("may not specify a duration less than 600 seconds (10 minutes)" in m for m in found)
    assert any(m.startswith('status.conditions[1].status: Unsupported value: "Maybe"') for m in found)
    assert (
        'status.conditions[1].type: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive'
        in found
    )
    empty = valid()
    del empty.spec.usages[:]
    assert messages(empty) == ["spec.usages: Required value"]


def test_certificate_must_be_certificate_pem() -> None:
    csr = valid()
    csr.status.conditions.add(type="Approved", status="True")
    csr.status.certificate = b"no pem here"
    assert any("must contain at least one CERTIFICATE PEM block" in m for m in messages(csr))
    csr.status.certificate = request_pem()
    assert any(
        'only CERTIFICATE PEM blocks are allowed, found "CERTIFICATE REQUEST"' in m for m in messages(csr)
    )
    csr.status.certificate = pki.new_ca().cert_pem
    assert messages(csr) == []


def test_update_rules() -> None:
    old = valid()
    approved = CSR()
    approved.CopyFrom(old)
    approved.status.conditions.add(type="Approved", status="True")
    assert validate_csr_update(old, approved, "approval") == []
    found = [str(e) for e in validate_csr_update(approved, old, "approval")]
    assert found == ['status.conditions: Forbidden: updates may not remove a condition of type "Approved"']
    issued = CSR()
    issued.CopyFrom(approved)
    issued.status.certificate = pki.new_ca().cert_pem
    assert validate_csr_update(approved, issued, "status") == []
    assert [str(e) for e in validate_csr_update(approved, issued, "approval")] == [
        "status.certificate: Forbidden: updates may not set certificate content"
    ]
    unapproved = CSR()
    unapproved.CopyFrom(old)
    unapproved.status.certificate = issued.status.certificate
    assert "only be set on an approved request" in str(validate_csr_update(old, unapproved, "status")[0])
    reissued = CSR()
    reissued.CopyFrom(issued)
    reissued.status.certificate = pki.new_ca().cert_pem
    assert "may not modify existing certificate content" in str(
        validate_csr_update(issued, reissued, "status")[0]
    )
