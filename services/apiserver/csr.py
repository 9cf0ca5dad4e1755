"""The REST strategy of CertificateSigningRequest, as Kubernetes' certificates registry has it.

- create: the requester's identity (spec.username/uid/groups) comes from authentication, never
  from the client, so approvers can trust it; status starts empty.
- update: only metadata changes; spec and status are kept.
- status subresource (the signer): status.certificate and non-approval conditions (Failed);
  the Approved/Denied conditions are kept as they were.
- approval subresource (approvers): only the Approved/Denied conditions; the certificate and
  other conditions are kept. RBAC names it `certificatesigningrequests/approval`.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.certificates.v1 import certificates_pb2
from services.apiserver.auth.user import UserInfo
from services.machinery.validation.certificates import APPROVAL_CONDITIONS

CSR = certificates_pb2.CertificateSigningRequest


def prepare_create(csr: CSR, user: UserInfo | None) -> None:
    spec = csr.spec
    spec.username, spec.uid = (user.name, user.uid) if user is not None else ("", "")
    del spec.groups[:]
    if user is not None:
        spec.groups.extend(user.groups)


def prepare_update(old: CSR, new: CSR, subresource: str) -> None:
    new.spec.CopyFrom(old.spec)
    if subresource == "status":
        _merge_conditions(new, old, keep_from_old=lambda t: t in APPROVAL_CONDITIONS)
    elif subresource == "approval":
        new.status.certificate = old.status.certificate
        _merge_conditions(new, old, keep_from_old=lambda t: t not in APPROVAL_CONDITIONS)
    else:
        new.status.CopyFrom(old.status)
    _stamp_conditions(old, new)


def _merge_conditions(new: CSR, old: CSR, keep_from_old: Callable[[str], bool]) -> None:
    kept = [c for c in old.status.conditions if keep_from_old(c.type)]
    taken = [c for c in new.status.conditions if not keep_from_old(c.type)]
    del new.status.conditions[:]
    new.status.conditions.extend([*kept, *taken])


def _stamp_conditions(old: CSR, new: CSR) -> None:
    """lastUpdateTime defaults to now; lastTransitionTime moves only when the status does."""
    now = Timestamp()
    now.GetCurrentTime()
    now.nanos = 0
    previous = {c.type: c for c in old.status.conditions}
    for condition in new.status.conditions:
        if not condition.HasField("last_update_time"):
            condition.last_update_time.CopyFrom(now)
        before = previous.get(condition.type)
        if before is not None and before.status == condition.status:
            condition.last_transition_time.CopyFrom(before.last_transition_time)
        elif not condition.HasField("last_transition_time") or before is not None:
            condition.last_transition_time.CopyFrom(now)
