"""csrsigning: issues the certificates of approved requests for Kubernetes' apiserver-client
signers, with the cluster signing CA (--cluster-signing-cert-file/--cluster-signing-key-file).

- `kubernetes.io/kube-apiserver-client-kubelet`: only well-formed kubelet requests
  (O=system:nodes, CN=system:node:<name>, no subjectAltNames, client usages).
- `kubernetes.io/kube-apiserver-client`: client certificates for anyone an approver vouched
  for; only client usages.

A request the signer refuses gets a Failed condition (reason SignerValidationFailure) instead
of a certificate. Validity is --cluster-signing-duration, or the request's expirationSeconds
when shorter, never beyond the CA's own expiry; certificates are backdated five minutes
against clock skew, as Kubernetes does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pinnace.api.certificates.v1 import certificates_pb2
from services.controllers.base import Controller, ControllerContext
from services.controllers.csrutil import (
    APISERVER_CLIENT_SIGNER,
    KUBELET_CLIENT_SIGNER,
    is_approved,
    is_settled,
    kubelet_client_problems,
    subject_values,
)
from services.machinery.validation.certificates import parse_request

CSR = certificates_pb2.CertificateSigningRequest
BACKDATE = dt.timedelta(minutes=5)
SYSTEM_MASTERS = "system:masters"
_CLIENT_USAGES = frozenset({"digital signature", "key encipherment", "client auth"})
_EXTENDED = {
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
}


class SigningRefusedError(ValueError):
    """The request is approved but this signer will not issue it (becomes a Failed condition)."""


@dataclass(frozen=True)
class SigningCA:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @classmethod
    def load(cls, cert_file: Path, key_file: Path) -> SigningCA:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise ValueError(f"{key_file}: only ECDSA and RSA signing keys are supported")
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            raise ValueError(f"{key_file} is not the key of {cert_file}")
        return cls(cert, key)


def _key_usage(usages: set[str]) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature="digital signature" in usages or "signing" in usages,
        content_commitment="content commitment" in usages,
        key_encipherment="key encipherment" in usages,
        data_encipherment="data encipherment" in usages,
        key_agreement="key agreement" in usages,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def check_signer_rules(csr: CSR, request: x509.CertificateSigningRequest) -> None:
    usages = list(csr.spec.usages)
    if csr.spec.signer_name == KUBELET_CLIENT_SIGNER:
        problems = kubelet_client_problems(request, usages)
        if problems:
            raise SigningRefusedError("; ".join(problems))
    elif csr.spec.signer_name == APISERVER_CLIENT_SIGNER:
        if "client auth" not in usages or not set(usages) <= _CLIENT_USAGES:
            raise SigningRefusedError(
                f"usages must include client auth and be among {sorted(_CLIENT_USAGES)}"
            )
        # Kubernetes' CertificateSubjectRestriction: no cluster-admin certificates through CSRs.
        if SYSTEM_MASTERS in subject_values(request, NameOID.ORGANIZATION_NAME):
            raise SigningRefusedError(
                f"use of {APISERVER_CLIENT_SIGNER} signer with O={SYSTEM_MASTERS} is not allowed"
            )


def sign(
    ca: SigningCA,
    csr: CSR,
    duration: dt.timedelta,
    now: dt.datetime | None = None,
) -> bytes:
    """The PEM certificate for an approved request; SigningRefusedError if the signer's rules forbid it."""
    try:
        request = parse_request(csr.spec.request)
    except ValueError as exc:
        raise SigningRefusedError(str(exc)) from None
    check_signer_rules(csr, request)
    moment = now or dt.datetime.now(dt.UTC)
    if csr.spec.HasField("expiration_seconds"):
        duration = min(duration, dt.timedelta(seconds=csr.spec.expiration_seconds))
    not_after = min(moment + duration, ca.certificate.not_valid_after_utc)
    usages = set(csr.spec.usages)
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(usages), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    extended = [_EXTENDED[u] for u in sorted(usages) if u in _EXTENDED]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    try:
        alt_names = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        builder = builder.add_extension(alt_names, critical=False)
    except x509.ExtensionNotFound:
        pass
    cert = builder.sign(ca.key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


class CSRSigningController(Controller):
    name = "csrsigning"
    default_workers = 1
    signers = (KUBELET_CLIENT_SIGNER, APISERVER_CLIENT_SIGNER)

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        settings = ctx.settings
        self.ca: SigningCA | None = None
        if settings.cluster_signing_cert_file and settings.cluster_signing_key_file:
            self.ca = SigningCA.load(
                Path(settings.cluster_signing_cert_file), Path(settings.cluster_signing_key_file)
            )
        else:
            self.log.warning("no --cluster-signing-cert-file/--cluster-signing-key-file: signing nothing")
        self.duration = dt.timedelta(seconds=settings.cluster_signing_duration)
        self.requests = self.informer("certificatesigningrequests")
        self.requests.add_handlers(on_add=self.enqueue_obj, on_update=lambda _old, new: self.enqueue_obj(new))

    async def sync(self, name: str) -> None:
        csr = self.requests.store.get(name)
        if self.ca is None or not isinstance(csr, CSR) or csr.spec.signer_name not in self.signers:
            return
        if not is_approved(csr) or is_settled(csr):
            return
        issued = CSR()
        issued.CopyFrom(csr)
        try:
            issued.status.certificate = sign(self.ca, csr, self.duration)
        except SigningRefusedError as exc:
            failed = issued.status.conditions.add(type="Failed", status="True")
            failed.reason, failed.message = "SignerValidationFailure", str(exc)
            self.log.info("refused to sign", csr=name, reason=str(exc))
        await self.client.update_status(issued)
