"""Errors of API calls, rebuilt from the gRPC status and the metav1.Status the apiserver
attaches, so callers branch on Kubernetes' reasons (NotFound, Conflict, Expired...)."""

from __future__ import annotations

from typing import Any

import grpc

from pinnace.api.meta.v1 import meta_pb2

STATUS_METADATA_KEY = "pinnace-status-bin"


class APIStatusError(Exception):
    """An API call failed; `reason` is Kubernetes' StatusReason."""

    reason = "Unknown"

    def __init__(self, message: str, code: grpc.StatusCode, status: meta_pb2.Status | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status or meta_pb2.Status(message=message, reason=self.reason)

    @property
    def causes(self) -> list[meta_pb2.StatusCause]:
        return list(self.status.details.causes)


class NotFoundError(APIStatusError):
    reason = "NotFound"


class AlreadyExistsError(APIStatusError):
    reason = "AlreadyExists"


class ConflictError(APIStatusError):
    reason = "Conflict"


class InvalidError(APIStatusError):
    reason = "Invalid"


class BadRequestError(APIStatusError):
    reason = "BadRequest"


class ExpiredError(APIStatusError):
    """The resourceVersion is too old (Kubernetes' 410 Gone): relist."""

    reason = "Expired"


class ForbiddenError(APIStatusError):
    reason = "Forbidden"


class UnauthorizedError(APIStatusError):
    reason = "Unauthorized"


class TooLargeError(APIStatusError):
    reason = "RequestEntityTooLarge"


class TooManyRequestsError(APIStatusError):
    """429: try again later (an eviction a PodDisruptionBudget refuses; see retry_after)."""

    reason = "TooManyRequests"

    @property
    def retry_after(self) -> int:
        return self.status.details.retry_after_seconds


class UnavailableError(APIStatusError):
    """The apiserver cannot be reached or is not ready; retry."""

    reason = "ServiceUnavailable"


_BY_REASON: dict[str, type[APIStatusError]] = {
    cls.reason: cls
    for cls in (
        NotFoundError,
        AlreadyExistsError,
        ConflictError,
        InvalidError,
        BadRequestError,
        ExpiredError,
        ForbiddenError,
        UnauthorizedError,
        TooLargeError,
        TooManyRequestsError,
        UnavailableError,
    )
}
_BY_REASON["Gone"] = ExpiredError
_BY_CODE: dict[grpc.StatusCode, type[APIStatusError]] = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidError,
    grpc.StatusCode.OUT_OF_RANGE: ExpiredError,
    grpc.StatusCode.PERMISSION_DENIED: ForbiddenError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthorizedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: TooLargeError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: UnavailableError,
}


def from_status(code: grpc.StatusCode, message: str, status: meta_pb2.Status | None) -> APIStatusError:
    """The error of a failed call, from its gRPC code, message and Status."""
    cls = _BY_REASON.get(status.reason) if status is not None else None
    cls = cls or _BY_CODE.get(code, APIStatusError)
    return cls(message, code, status)


def from_rpc_error(error: grpc.aio.AioRpcError | grpc.RpcError) -> APIStatusError:
    status: meta_pb2.Status | None = None
    trailing: Any = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == STATUS_METADATA_KEY and isinstance(value, bytes):
            status = meta_pb2.Status.FromString(value)
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else None) or str(error)
    return from_status(code, message, status)
