"""Field errors in the shape Kubernetes reports them.

Validation never stops at the first problem: it collects every FieldError, so a user fixes a
manifest in one round trip. The rendering follows k8s.io/apimachinery/pkg/util/validation/field
("spec.containers[0].name: Required value") because users search for those exact phrases.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class ErrorType(Enum):
    REQUIRED = "Required value"
    INVALID = "Invalid value"
    NOT_SUPPORTED = "Unsupported value"
    DUPLICATE = "Duplicate value"
    FORBIDDEN = "Forbidden"
    TOO_LONG = "Too long"
    TOO_MANY = "Too many"
    NOT_FOUND = "Not found"
    UNKNOWN_FIELD = "unknown field"
    TYPE_INVALID = "Invalid type"


_NO_VALUE = object()


@dataclass(frozen=True)
class FieldError:
    """One problem at one field path."""

    path: str
    type: ErrorType
    value: Any = _NO_VALUE
    detail: str = ""

    def __str__(self) -> str:
        if self.type is ErrorType.UNKNOWN_FIELD:
            return f"{self.path}: unknown field"
        text = f"{self.path}: {self.type.value}"
        if self.value is not _NO_VALUE and self.type in _SHOWS_VALUE:
            text += f": {_render(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text


_SHOWS_VALUE = {
    ErrorType.INVALID,
    ErrorType.NOT_SUPPORTED,
    ErrorType.DUPLICATE,
    ErrorType.NOT_FOUND,
    ErrorType.TYPE_INVALID,
}


def _render(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, ErrorType.REQUIRED, detail=detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, ErrorType.INVALID, value, detail)


def not_supported(path: str, value: Any, supported: list[str] | tuple[str, ...]) -> FieldError:
    listed = ", ".join(_render(s) for s in supported)
    return FieldError(path, ErrorType.NOT_SUPPORTED, value, f"supported values: {listed}")


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(path, ErrorType.DUPLICATE, value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(path, ErrorType.FORBIDDEN, detail=detail)


def too_long(path: str, limit: int) -> FieldError:
    return FieldError(path, ErrorType.TOO_LONG, detail=f"must have at most {limit} bytes")


def not_found(path: str, value: Any) -> FieldError:
    return FieldError(path, ErrorType.NOT_FOUND, value)


def unknown_field(path: str) -> FieldError:
    return FieldError(path, ErrorType.UNKNOWN_FIELD)


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    """A value of the wrong JSON type; composite values are not echoed back."""
    shown = value if isinstance(value, (str, int, float, bool)) else _NO_VALUE
    return FieldError(path, ErrorType.TYPE_INVALID, shown, detail)


class ValidationError(ValueError):
    """A non-empty list of ValidationError; the message lists them all, sorted like Kubernetes."""

    def __init__(self, errors: list[FieldError], subject: str = "") -> None:
        if not errors:
            raise ValueError("ValidationError needs at least one error")
        self.errors = list(errors)
        self.subject = subject
        body = "; ".join(str(e) for e in self.errors)
        if len(self.errors) > 1:
            body = f"[{body}]"
        super().__init__(f"{subject} is invalid: {body}" if subject else body)


def raise_if_any(errors: list[FieldError], subject: str = "") -> None:
    if errors:
        raise ValidationError(errors, subject)
