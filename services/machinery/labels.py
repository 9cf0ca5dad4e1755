"""Label selectors with Kubernetes' grammar: parse, match, format, and convert to and from
the LabelSelector message.

    environment=production, tier!=frontend, app in (web, api), !canary, track

The apiserver evaluates selectors server-side and controllers match pods against them
thousands of times a second, so a parsed Selector is an immutable tuple of Requirements with
a cheap `matches`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from pinnace.api.meta.v1 import meta_pb2
from services.machinery import formats


class Operator(Enum):
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


class SelectorError(ValueError):
    """The selector text or LabelSelector is malformed."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        present = self.key in labels
        if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
            return present and labels[self.key] in self.values
        if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return not present or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return present
        if op is Operator.DOES_NOT_EXIST:
            return not present
        if not present:
            return False
        try:
            actual = int(labels[self.key])
        except ValueError:
            return False
        bound = int(self.values[0])
        return actual > bound if op is Operator.GREATER_THAN else actual < bound

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({','.join(self.values)})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{self.values[0]}"


def requirement(key: str, operator: Operator, values: list[str] | tuple[str, ...] = ()) -> Requirement:
    """Build a validated Requirement (values sorted and de-duplicated, as Kubernetes stores them)."""
    problems = formats.qualified_name(key)
    if problems:
        raise SelectorError(f"invalid label key {key!r}: {'; '.join(problems)}")
    unique = tuple(sorted(set(values)))
    if operator in (Operator.IN, Operator.NOT_IN) and not unique:
        raise SelectorError("for 'in', 'notin' operators, values set can't be empty")
    if operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS) and len(unique) != 1:
        raise SelectorError("exact-match compatibility requires one single value")
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and unique:
        raise SelectorError("values set must be empty for exists and does not exist")
    if operator in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(unique) != 1:
            raise SelectorError("for 'Gt', 'Lt' operators, exactly one value is required")
        try:
            int(unique[0])
        except ValueError:
            raise SelectorError(
                f"for 'Gt', 'Lt' operators, the value must be an integer: {unique[0]!r}"
            ) from None
    else:
        for value in unique:
            problems = formats.label_value(value)
            if problems:
                raise SelectorError(f"invalid label value: {value!r}: {'; '.join(problems)}")
    return Requirement(key, operator, unique)


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements. No requirements selects everything; `nothing` selects none."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    def is_empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _sorted(requirements: list[Requirement]) -> tuple[Requirement, ...]:
    """Kubernetes keeps requirements sorted by key; the operator breaks ties deterministically."""
    return tuple(sorted(requirements, key=lambda r: (r.key, r.operator.value, r.values)))


EVERYTHING = Selector()
NOTHING = Selector(nothing=True)


# ---------------------------------------------------------------------- text grammar

_SPECIAL = "!=(),<>"


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith(("==", "!="), i):
            tokens.append(text[i : i + 2])
            i += 2
        elif ch in _SPECIAL:
            tokens.append(ch)
            i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            tokens.append(text[start:i])
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, found: str | None, expected: str) -> SelectorError:
        shown = "" if found is None else found
        return SelectorError(f"unable to parse requirement: found '{shown}', expected: {expected}")

    def identifier(self, expected: str) -> str:
        token = self.take()
        if token is None or token in _SPECIAL or token in ("==", "!="):
            raise self.fail(token, expected)
        return token

    def parse(self) -> Selector:
        if not self.tokens:
            return EVERYTHING
        requirements = [self.requirement()]
        while self.peek() is not None:
            token = self.take()
            if token != ",":
                raise self.fail(token, "',' or end of string")
            requirements.append(self.requirement())
        return Selector(_sorted(requirements))

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return requirement(self.identifier("identifier after '!'"), Operator.DOES_NOT_EXIST)
        key = self.identifier("identifier")
        token = self.peek()
        if token is None or token == ",":
            return requirement(key, Operator.EXISTS)
        self.take()
        simple = {
            "=": Operator.EQUALS,
            "==": Operator.DOUBLE_EQUALS,
            "!=": Operator.NOT_EQUALS,
            ">": Operator.GREATER_THAN,
            "<": Operator.LESS_THAN,
        }
        if token in simple:
            following = self.peek()
            if following is None or following == ",":
                value = ""
            else:
                value = self.identifier("identifier after operator")
            return requirement(key, simple[token], [value])
        if token in ("in", "notin"):
            return requirement(key, Operator.IN if token == "in" else Operator.NOT_IN, self.value_set())
        raise self.fail(token, "'=', '!=', '==', 'in', notin'")

    def value_set(self) -> list[str]:
        token = self.take()
        if token != "(":
            raise self.fail(token, "'('")
        values: list[str] = []
        while True:
            token = self.peek()
            if token == ")":
                self.take()
                return values
            if token == ",":
                self.take()
                values.append("")
                continue
            values.append(self.identifier("identifier, ',' or ')'"))
            token = self.take()
            if token == ")":
                return values
            if token != ",":
                raise self.fail(token, "',' or ')'")


def parse(text: str) -> Selector:
    """Parse selector text; the empty string selects everything."""
    return _Parser(text).parse()


def from_set(labels: Mapping[str, str]) -> Selector:
    """The equality selector a ReplicationController or Service uses (every pair must match)."""
    return Selector(_sorted([requirement(k, Operator.EQUALS, [v]) for k, v in labels.items()]))


# ---------------------------------------------------------------------- LabelSelector message

_EXPRESSION_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def from_label_selector(message: meta_pb2.LabelSelector | None) -> Selector:
    """metav1.LabelSelectorAsSelector: an absent selector selects nothing, an empty one everything."""
    if message is None:
        return NOTHING
    requirements = [requirement(k, Operator.EQUALS, [v]) for k, v in message.match_labels.items()]
    for expression in message.match_expressions:
        operator = _EXPRESSION_OPERATORS.get(expression.operator)
        if operator is None:
            raise SelectorError(f"{expression.operator!r} is not a valid label selector operator")
        requirements.append(requirement(expression.key, operator, list(expression.values)))
    return Selector(_sorted(requirements))


def to_label_selector(selector: Selector) -> meta_pb2.LabelSelector:
    """The LabelSelector message for a selector (equalities become matchLabels)."""
    if selector.nothing:
        raise SelectorError("a selector that matches nothing has no LabelSelector form")
    message = meta_pb2.LabelSelector()
    names = {v: k for k, v in _EXPRESSION_OPERATORS.items()}
    for req in selector.requirements:
        if req.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS) and req.key not in message.match_labels:
            message.match_labels[req.key] = req.values[0]
        elif req.operator is Operator.NOT_EQUALS:
            message.match_expressions.add(key=req.key, operator="NotIn", values=list(req.values))
        elif req.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS):
            message.match_expressions.add(key=req.key, operator="In", values=list(req.values))
        elif req.operator in names:
            message.match_expressions.add(key=req.key, operator=names[req.operator], values=list(req.values))
        else:
            raise SelectorError(f"operator {req.operator.value!r} has no LabelSelector form")
    return message
