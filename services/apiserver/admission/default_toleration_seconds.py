"""DefaultTolerationSeconds: a pod that does not say how long it tolerates its node being
not-ready or unreachable gets Kubernetes' default of 300 s for both NoExecute taints, so the
node lifecycle controller evicts it five minutes after its node goes silent, not at once."""

from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.apiserver.admission.chain import AdmissionPlugin, Attributes, Operation

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_SECONDS = 300


def _tolerates_key(tolerations: list[core_pb2.Toleration], key: str) -> bool:
    """A toleration that already covers the taint (by key, or Exists for every key)."""
    for tol in tolerations:
        if tol.effect and tol.effect != "NoExecute":
            continue
        if tol.operator == "Exists" and (not tol.key or tol.key == key):
            return True
        if tol.key == key:
            return True
    return False


class DefaultTolerationSeconds(AdmissionPlugin):
    name = "DefaultTolerationSeconds"

    def __init__(
        self, not_ready_seconds: int = DEFAULT_SECONDS, unreachable_seconds: int = DEFAULT_SECONDS
    ) -> None:
        self.seconds = {NOT_READY: not_ready_seconds, UNREACHABLE: unreachable_seconds}

    async def admit(self, attrs: Attributes) -> None:
        if attrs.operation is not Operation.CREATE or attrs.subresource:
            return
        pod = attrs.obj
        if not isinstance(pod, core_pb2.Pod):
            return
        existing = list(pod.spec.tolerations)
        for key, seconds in self.seconds.items():
            if not _tolerates_key(existing, key):
                pod.spec.tolerations.add(
                    key=key, operator="Exists", effect="NoExecute", toleration_seconds=seconds
                )
