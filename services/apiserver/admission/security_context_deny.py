"""SecurityContextDeny: refuse pods that choose their own user, groups or SELinux context (for
clusters that want every pod to run as its image says). Off by default, as in Kubernetes."""

from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.admission.chain import AdmissionPlugin, Attributes, Operation
from services.machinery import errors as ferr


class SecurityContextDeny(AdmissionPlugin):
    name = "SecurityContextDeny"

    async def validate(self, attrs: Attributes) -> None:
        pod = attrs.obj
        if not isinstance(pod, core_pb2.Pod) or attrs.operation not in (Operation.CREATE, Operation.UPDATE):
            return
        found: list[ferr.FieldError] = []
        sc = pod.spec.security_context
        if sc.HasField("se_linux_options"):
            found.append(
                ferr.forbidden(
                    "spec.securityContext.seLinuxOptions",
                    "pod.Spec.SecurityContext.SELinuxOptions is forbidden",
                )
            )
        if sc.HasField("run_as_user"):
            found.append(
                ferr.forbidden(
                    "spec.securityContext.runAsUser", "pod.Spec.SecurityContext.RunAsUser is forbidden"
                )
            )
        if sc.supplemental_groups:
            found.append(
                ferr.forbidden("spec.securityContext.supplementalGroups", "SupplementalGroups is forbidden")
            )
        if sc.HasField("fs_group"):
            found.append(ferr.forbidden("spec.securityContext.fsGroup", "FSGroup is forbidden"))
        for group, containers in (
            ("initContainers", pod.spec.init_containers),
            ("containers", pod.spec.containers),
        ):
            for i, container in enumerate(containers):
                csc = container.security_context
                if csc.HasField("se_linux_options"):
                    found.append(
                        ferr.forbidden(
                            f"spec.{group}[{i}].securityContext.seLinuxOptions",
                            "SecurityContext.SELinuxOptions is forbidden",
                        )
                    )
                if csc.HasField("run_as_user"):
                    found.append(
                        ferr.forbidden(
                            f"spec.{group}[{i}].securityContext.runAsUser",
                            "SecurityContext.RunAsUser is forbidden",
                        )
                    )
        if found:
            raise errors.forbidden(attrs.info, attrs.name, "; ".join(str(e) for e in found))
