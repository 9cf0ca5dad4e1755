"""csrapproving: auto-approves kubelet client certificate requests, as kube-controller-manager's
sarapprover does. A request for `kubernetes.io/kube-apiserver-client-kubelet` that is a
well-formed kubelet request is approved when its requester may, by a SubjectAccessReview,
create `certificatesigningrequests/selfnodeclient` (a node renewing its own certificate: the
requester is the node the certificate names) or `certificatesigningrequests/nodeclient` (a new
node, through a bootstrap token). Anything else is left pending for an administrator to
approve or deny through the `approval` subresource; nothing is denied automatically."""

from __future__ import annotations

from cryptography.x509.oid import NameOID

from pinnace.api.authorization.v1 import authorization_pb2
from pinnace.api.certificates.v1 import certificates_pb2
from services.controllers.base import Controller, ControllerContext
from services.controllers.csrutil import (
    KUBELET_CLIENT_SIGNER,
    condition,
    is_settled,
    kubelet_client_problems,
    subject_values,
)
from services.machinery.validation.certificates import parse_request

CSR = certificates_pb2.CertificateSigningRequest
_MESSAGES = {
    "selfnodeclient": "Auto approving self kubelet client certificate after SubjectAccessReview.",
    "nodeclient": "Auto approving kubelet client certificate after SubjectAccessReview.",
}


def recognized(csr: CSR) -> list[str]:
    """The approval subresources this request qualifies for, most specific first."""
    if csr.spec.signer_name != KUBELET_CLIENT_SIGNER:
        return []
    try:
        request = parse_request(csr.spec.request)
    except ValueError:
        return []
    if kubelet_client_problems(request, list(csr.spec.usages)):
        return []
    names = subject_values(request, NameOID.COMMON_NAME)
    self_request = bool(names) and csr.spec.username == names[0]
    return ["selfnodeclient", "nodeclient"] if self_request else ["nodeclient"]


class CSRApprovingController(Controller):
    name = "csrapproving"
    default_workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.requests = self.informer("certificatesigningrequests")
        self.requests.add_handlers(on_add=self.enqueue_obj, on_update=lambda _old, new: self.enqueue_obj(new))

    async def may(self, csr: CSR, subresource: str) -> bool:
        review = authorization_pb2.SubjectAccessReview()
        spec = review.spec
        spec.user, spec.uid = csr.spec.username, csr.spec.uid
        spec.groups.extend(csr.spec.groups)
        attrs = spec.resource_attributes
        attrs.group, attrs.resource, attrs.subresource, attrs.verb = (
            "certificates.k8s.io",
            "certificatesigningrequests",
            subresource,
            "create",
        )
        answer = await self.client.create(review)
        return answer.status.allowed

    async def sync(self, name: str) -> None:
        csr = self.requests.store.get(name)
        if not isinstance(csr, CSR) or is_settled(csr) or condition(csr, "Approved"):
            return
        for subresource in recognized(csr):
            if await self.may(csr, subresource):
                await self.approve(csr, _MESSAGES[subresource])
                return
        if recognized(csr):
            self.log.info("kubelet client request not auto-approved", csr=name, requester=csr.spec.username)

    async def approve(self, csr: CSR, message: str) -> None:
        patch = {
            "status": {
                "conditions": [
                    {"type": "Approved", "status": "True", "reason": "AutoApproved", "message": message}
                ]
            }
        }
        await self.client.patch(
            "certificatesigningrequests", csr.metadata.name, patch, patch_type="merge", subresource="approval"
        )
        self.log.info("approved", csr=csr.metadata.name, requester=csr.spec.username)
