"""One exception for every failure a CRI call reports, and the translation of Docker's errors
into it, so that each RPC answers a precise gRPC status (DESIGN.md section 4)."""

from __future__ import annotations

from typing import Any

import grpc
from docker import errors as docker_errors


class CRIError(Exception):
    """A failure with the gRPC status code it must be reported with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> CRIError:
    return CRIError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> CRIError:
    return CRIError(grpc.StatusCode.NOT_FOUND, message)


def precondition(message: str) -> CRIError:
    return CRIError(grpc.StatusCode.FAILED_PRECONDITION, message)


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, docker_errors.NotFound)


def _explanation(exc: docker_errors.APIError) -> str:
    explanation: Any = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc)


def from_docker(exc: docker_errors.DockerException, what: str) -> CRIError:
    """Map a Docker error onto the gRPC code Kubernetes' runtimes use for the same case."""
    if isinstance(exc, docker_errors.ImageNotFound):
        return CRIError(grpc.StatusCode.NOT_FOUND, f"{what}: image not found: {_explanation(exc)}")
    if isinstance(exc, docker_errors.NotFound):
        return CRIError(grpc.StatusCode.NOT_FOUND, f"{what}: {_explanation(exc)}")
    if isinstance(exc, docker_errors.APIError):
        status = exc.status_code or 500
        text = _explanation(exc)
        if status == 400:
            return CRIError(grpc.StatusCode.INVALID_ARGUMENT, f"{what}: {text}")
        if status == 401:
            return CRIError(grpc.StatusCode.UNAUTHENTICATED, f"{what}: {text}")
        if status == 403:
            return CRIError(grpc.StatusCode.PERMISSION_DENIED, f"{what}: {text}")
        if status == 409:
            return CRIError(grpc.StatusCode.FAILED_PRECONDITION, f"{what}: {text}")
        if "is not running" in text or "cannot join network" in text or "not a shared" in text:
            return CRIError(grpc.StatusCode.FAILED_PRECONDITION, f"{what}: {text}")
        if "Minimum memory limit" in text or ("invalid" in text.lower() and "cpu" in text.lower()):
            return CRIError(grpc.StatusCode.INVALID_ARGUMENT, f"{what}: {text}")
        return CRIError(grpc.StatusCode.INTERNAL, f"{what}: {text}")
    return CRIError(grpc.StatusCode.UNAVAILABLE, f"{what}: docker is unreachable: {exc}")
