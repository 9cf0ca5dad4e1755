"""Validation of certificates.k8s.io/v1 CertificateSigningRequest, with Kubernetes' messages.

The object rules (request PEM, signerName, usages, conditions, certificate PEM) apply on every
write; the update rules (`validate_csr_update`) compare with the stored object: approval,
denial and failure cannot be taken back, and an issued certificate cannot change.
"""

from __future__ import annotations

import re

from cryptography import x509

from pinnace.api.certificates.v1 import certificates_pb2
from services.machinery import errors as ferr
from services.machinery import formats
from services.machinery.errors import FieldError

# Kubernetes' KeyUsage values (certificates/v1 types.go).
KEY_USAGES = (
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
)
CONDITION_STATUSES = ("True", "False", "Unknown")
APPROVAL_CONDITIONS = ("Approved", "Denied")
FINAL_CONDITIONS = ("Approved", "Denied", "Failed")
MIN_EXPIRATION_SECONDS = 600
_MAX_SIGNER_NAME = 571
_PEM_BLOCK = re.compile(rb"-----BEGIN ([^-\n]*)-----\r?\n(.*?)-----END \1-----", re.S)


def parse_request(request: bytes) -> x509.CertificateSigningRequest:
    """The PKCS#10 request in a CSR's spec.request; ValueError with Kubernetes' wording."""
    block = _PEM_BLOCK.search(request)
    if block is None or block.group(1) != b"CERTIFICATE REQUEST":
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    try:
        parsed = x509.load_pem_x509_csr(request)
    except ValueError as exc:
        raise ValueError(f"invalid certificate request: {exc}") from None
    if not parsed.is_signature_valid:
        raise ValueError("the certificate request's signature is invalid")
    return parsed


def _signer_name_errors(name: str) -> list[FieldError]:
    path = "spec.signerName"
    if not name:
        return [ferr.required(path)]
    if len(name) > _MAX_SIGNER_NAME:
        return [ferr.too_long(path, _MAX_SIGNER_NAME)]
    domain, slash, rest = name.partition("/")
    if not slash or "/" in rest:
        return [
            ferr.invalid(
                path, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'"
            )
        ]
    errors: list[FieldError] = []
    if len(domain.split(".")) < 2:
        errors.append(
            ferr.invalid(path, domain, "should be a domain with at least two segments separated by dots")
        )
    else:
        errors += [ferr.invalid(path, domain, p) for p in formats.dns1123_subdomain(domain)]
    errors += [
        ferr.invalid(path, rest, f'validating label "{rest}": {p}') for p in formats.dns1123_subdomain(rest)
    ]
    return errors


def _certificate_errors(certificate: bytes) -> list[FieldError]:
    path = "status.certificate"
    shown = "<certificate data>"
    blocks = list(_PEM_BLOCK.finditer(certificate))
    if not blocks:
        return [ferr.invalid(path, shown, "must contain at least one CERTIFICATE PEM block")]
    for block in blocks:
        label, body = block.group(1), block.group(2)
        if label != b"CERTIFICATE":
            return [
                ferr.invalid(
                    path, shown, f'only CERTIFICATE PEM blocks are allowed, found "{label.decode()}"'
                )
            ]
        if b":" in body.split(b"\n", 1)[0]:
            return [ferr.invalid(path, shown, "no PEM block headers are permitted")]
        try:
            x509.load_pem_x509_certificate(block.group(0))
        except ValueError as exc:
            return [ferr.invalid(path, shown, str(exc))]
    return []


def validate_csr(csr: certificates_pb2.CertificateSigningRequest) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = csr.spec
    try:
        parse_request(spec.request)
    except ValueError as exc:
        errors.append(ferr.invalid("spec.request", "<request data>", str(exc)))
    errors += _signer_name_errors(spec.signer_name)
    if spec.HasField("expiration_seconds") and spec.expiration_seconds < MIN_EXPIRATION_SECONDS:
        errors.append(
            ferr.invalid(
                "spec.expirationSeconds",
                spec.expiration_seconds,
                "may not specify a duration less than 600 seconds (10 minutes)",
            )
        )
    if not spec.usages:
        errors.append(ferr.required("spec.usages"))
    seen: set[str] = set()
    for index, usage in enumerate(spec.usages):
        if usage not in KEY_USAGES:
            errors.append(ferr.not_supported(f"spec.usages[{index}]", usage, sorted(KEY_USAGES)))
        if usage in seen:
            errors.append(ferr.duplicate(f"spec.usages[{index}]", usage))
        seen.add(usage)
    errors += _condition_errors(csr.status)
    if csr.status.certificate:
        errors += _certificate_errors(csr.status.certificate)
    return errors


def _condition_errors(status: certificates_pb2.CertificateSigningRequestStatus) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, condition in enumerate(status.conditions):
        path = f"status.conditions[{index}]"
        if not condition.type:
            errors.append(ferr.required(f"{path}.type"))
        elif condition.type in seen:
            errors.append(ferr.duplicate(f"{path}.type", condition.type))
        if condition.status not in CONDITION_STATUSES:
            errors.append(ferr.not_supported(f"{path}.status", condition.status, CONDITION_STATUSES))
        if {condition.type, *seen} >= set(APPROVAL_CONDITIONS) and condition.type in APPROVAL_CONDITIONS:
            errors.append(
                ferr.invalid(
                    f"{path}.type", condition.type, "Approved and Denied conditions are mutually exclusive"
                )
            )
        seen.add(condition.type)
    return errors


def _types(csr: certificates_pb2.CertificateSigningRequest) -> set[str]:
    return {c.type for c in csr.status.conditions}


def validate_csr_update(
    old: certificates_pb2.CertificateSigningRequest,
    new: certificates_pb2.CertificateSigningRequest,
    subresource: str,
) -> list[FieldError]:
    """What an update (of the object, its status or its approval) may not do."""
    errors: list[FieldError] = []
    kept = _types(new)
    for final in FINAL_CONDITIONS:
        if final in _types(old) and final not in kept:
            errors.append(
                ferr.forbidden("status.conditions", f'updates may not remove a condition of type "{final}"')
            )
    if old.status.certificate != new.status.certificate:
        if subresource == "approval":
            errors.append(ferr.forbidden("status.certificate", "updates may not set certificate content"))
        elif old.status.certificate:
            errors.append(
                ferr.forbidden("status.certificate", "updates may not modify existing certificate content")
            )
        elif not any(c.type == "Approved" and c.status == "True" for c in new.status.conditions):
            errors.append(
                ferr.forbidden("status.certificate", "the certificate may only be set on an approved request")
            )
        elif {"Denied", "Failed"} & {c.type for c in new.status.conditions if c.status == "True"}:
            errors.append(
                ferr.forbidden(
                    "status.certificate", "the certificate may not be set on a denied or failed request"
                )
            )
    return errors
