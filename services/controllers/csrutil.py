"""What the CSR approver and signer share: the state of a request (approved, denied, failed,
issued) and Kubernetes' rules for a kubelet client certificate request."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from pinnace.api.certificates.v1 import certificates_pb2

CSR = certificates_pb2.CertificateSigningRequest
KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
APISERVER_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
# A kubelet client certificate is for client auth and signatures; key encipherment is allowed
# for RSA keys (Kubernetes' kubelet client usage sets).
KUBELET_CLIENT_REQUIRED = frozenset({"digital signature", "client auth"})
KUBELET_CLIENT_ALLOWED = KUBELET_CLIENT_REQUIRED | {"key encipherment"}


def condition(csr: CSR, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in csr.status.conditions)


def is_approved(csr: CSR) -> bool:
    return condition(csr, "Approved") and not condition(csr, "Denied")


def is_settled(csr: CSR) -> bool:
    """Nothing more to decide: denied, failed or already issued."""
    return condition(csr, "Denied") or condition(csr, "Failed") or bool(csr.status.certificate)


def subject_values(request: x509.CertificateSigningRequest, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in request.subject.get_attributes_for_oid(oid)]


def kubelet_client_problems(request: x509.CertificateSigningRequest, usages: list[str]) -> list[str]:
    """Why a request is not a kubelet client certificate request (Kubernetes'
    ValidateKubeletClientCSR); empty when it is one."""
    problems = []
    if subject_values(request, NameOID.ORGANIZATION_NAME) != [NODES_GROUP]:
        problems.append(f"subject organization is not {NODES_GROUP}")
    names = subject_values(request, NameOID.COMMON_NAME)
    if len(names) != 1 or not names[0].startswith(NODE_USER_PREFIX) or names[0] == NODE_USER_PREFIX:
        problems.append(f"subject common name does not begin with {NODE_USER_PREFIX}")
    try:
        san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        san = None
    if san is not None and len(san.value) > 0:
        problems.append("DNS, email, IP and URI subjectAltNames are not allowed")
    wanted = set(usages)
    if not wanted >= KUBELET_CLIENT_REQUIRED or not wanted <= KUBELET_CLIENT_ALLOWED:
        problems.append(
            f"usages did not match {sorted(KUBELET_CLIENT_REQUIRED)} (optionally with key encipherment)"
        )
    return problems
