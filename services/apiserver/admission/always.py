"""AlwaysAdmit and AlwaysDeny: the trivial plugins, for tests and for locking a cluster down."""

from __future__ import annotations

from services.apiserver import errors
from services.apiserver.admission.chain import AdmissionPlugin, Attributes


class AlwaysAdmit(AdmissionPlugin):
    name = "AlwaysAdmit"


class AlwaysDeny(AdmissionPlugin):
    name = "AlwaysDeny"

    async def validate(self, attrs: Attributes) -> None:
        if attrs.user is None:
            return  # the apiserver's own bootstrap writes are not API requests
        raise errors.forbidden(attrs.info, attrs.name, "admission disabled by the AlwaysDeny plugin")
