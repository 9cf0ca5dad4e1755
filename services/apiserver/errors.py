"""API errors: Kubernetes' status reasons mapped onto gRPC codes (docs/api.md has the table).

Every error carries a pinnace.api.meta.v1.Status (reason, message, field causes) that the
server attaches to the call's trailing metadata, so clients get the same detail kubectl shows.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from pinnace.api.meta.v1 import meta_pb2
from services.machinery.errors import FieldError
from services.machinery.kinds import KindInfo

STATUS_METADATA_KEY = "pinnace-status-bin"

# Kubernetes reason -> (gRPC code, HTTP code it stands for).
REASONS: dict[str, tuple[grpc.StatusCode, int]] = {
    "NotFound": (grpc.StatusCode.NOT_FOUND, 404),
    "AlreadyExists": (grpc.StatusCode.ALREADY_EXISTS, 409),
    "Conflict": (grpc.StatusCode.ABORTED, 409),
    "Invalid": (grpc.StatusCode.INVALID_ARGUMENT, 422),
    "BadRequest": (grpc.StatusCode.INVALID_ARGUMENT, 400),
    "Forbidden": (grpc.StatusCode.PERMISSION_DENIED, 403),
    "Unauthorized": (grpc.StatusCode.UNAUTHENTICATED, 401),
    "Expired": (grpc.StatusCode.OUT_OF_RANGE, 410),
    "Gone": (grpc.StatusCode.OUT_OF_RANGE, 410),
    "MethodNotAllowed": (grpc.StatusCode.UNIMPLEMENTED, 405),
    "RequestEntityTooLarge": (grpc.StatusCode.RESOURCE_EXHAUSTED, 413),
    "TooManyRequests": (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    "InternalError": (grpc.StatusCode.INTERNAL, 500),
    "ServiceUnavailable": (grpc.StatusCode.UNAVAILABLE, 503),
}


class APIError(Exception):
    def __init__(
        self,
        reason: str,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        group: str = "",
        causes: Iterable[meta_pb2.StatusCause] = (),
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.code, self.http_code = REASONS[reason]
        self.details = meta_pb2.StatusDetails(name=name, kind=kind, group=group, causes=list(causes))

    def status(self) -> meta_pb2.Status:
        return meta_pb2.Status(
            status="Failure",
            message=self.message,
            reason=self.reason,
            details=self.details,
            code=self.http_code,
        )


def _qualified(info: KindInfo) -> str:
    return info.resource


def not_found(info: KindInfo, name: str) -> APIError:
    return APIError(
        "NotFound", f'{_qualified(info)} "{name}" not found', kind=info.plural, name=name, group=info.group
    )


def already_exists(info: KindInfo, name: str) -> APIError:
    return APIError(
        "AlreadyExists",
        f'{_qualified(info)} "{name}" already exists',
        kind=info.plural,
        name=name,
        group=info.group,
    )


def conflict(info: KindInfo, name: str, detail: str) -> APIError:
    return APIError(
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(info)} "{name}": {detail}',
        kind=info.plural,
        name=name,
        group=info.group,
    )


def stale(info: KindInfo, name: str) -> APIError:
    return conflict(
        info,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
    )


def invalid(info: KindInfo, name: str, errors: list[FieldError]) -> APIError:
    body = "; ".join(str(e) for e in errors)
    if len(errors) > 1:
        body = f"[{body}]"
    causes = [
        meta_pb2.StatusCause(
            reason=f"Field{e.type.name.title().replace('_', '')}", message=str(e), field=e.path
        )
        for e in errors
    ]
    return APIError(
        "Invalid",
        f'{info.kind} "{name}" is invalid: {body}',
        kind=info.kind,
        name=name,
        group=info.group,
        causes=causes,
    )


def bad_request(message: str) -> APIError:
    return APIError("BadRequest", message)


def forbidden(info: KindInfo, name: str, detail: str) -> APIError:
    return APIError(
        "Forbidden",
        f'{_qualified(info)} "{name}" is forbidden: {detail}',
        kind=info.plural,
        name=name,
        group=info.group,
    )


def expired(message: str) -> APIError:
    return APIError("Expired", message)


def too_large(limit: int) -> APIError:
    return APIError("RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def method_not_allowed(info: KindInfo, verb: str) -> APIError:
    return APIError(
        "MethodNotAllowed",
        f"{verb} is not supported on resources of kind {info.resource}",
        kind=info.plural,
        group=info.group,
    )


def internal(message: str) -> APIError:
    return APIError("InternalError", f"Internal error occurred: {message}")
