"""Field selectors ("metadata.name=web,spec.nodeName!=node-1"), as Kubernetes parses them.

Only equality operators exist; values may escape ',', '=' and '\\' with a backslash. Which
field labels a kind supports is the registry's business (services.machinery.kinds); this
module only parses and matches against a mapping of field label to value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class FieldSelectorError(ValueError):
    """The field selector is malformed or names an unsupported field."""


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negated: bool = False

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal != self.negated

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{'!=' if self.negated else '='}{escaped}"


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def fields(self) -> set[str]:
        return {r.field for r in self.requirements}

    def exact_value(self, field: str) -> str | None:
        """The value an equality requirement pins the field to (lets an index answer a query)."""
        for r in self.requirements:
            if r.field == field and not r.negated:
                return r.value
        return None

    def is_empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        raise FieldSelectorError("invalid field selector: trailing backslash")
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            if value[i + 1] not in "\\,=":
                raise FieldSelectorError(f"invalid field selector: invalid escape sequence: \\{value[i + 1]}")
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _find_operator(term: str) -> tuple[int, str]:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return i, op
        i += 1
    return -1, ""


def parse(text: str, supported: set[str] | None = None) -> FieldSelector:
    """Parse a field selector; with `supported`, refuse field labels the kind does not index."""
    if not text.strip():
        return FieldSelector()
    requirements = []
    for term in _split_unescaped(text, ","):
        index, op = _find_operator(term)
        if index < 0:
            raise FieldSelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field = term[:index].strip()
        value = _unescape(term[index + len(op) :].strip())
        if not field:
            raise FieldSelectorError(f"invalid selector: '{text}'; field label is empty in '{term}'")
        if supported is not None and field not in supported:
            raise FieldSelectorError(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, value, negated=op == "!="))
    return FieldSelector(tuple(requirements))
