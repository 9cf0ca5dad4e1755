"""kubectl's `-o jsonpath=TEMPLATE`: text with `{...}` expressions over the encoded object.

Supported: `.field` (dots inside a key escaped as `\\.`), `['key']`, `..field` (recursive),
`[*]`, `[N]` (negative from the end), `[a:b]`, filters `[?(@.path == "x")]` with == != < >
<= >= or a bare `[?(@.path)]`, `$`/`@` roots, `{range EXPR}...{end}`, and string literals
`{"\\n"}`. Missing keys print nothing (kubectl's --allow-missing-template-keys default)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class JSONPathError(ValueError):
    """The template does not parse."""


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Expr:
    path: str


@dataclass(frozen=True)
class _Range:
    path: str
    body: tuple[_Text | _Expr | _Range, ...]


Node = _Text | _Expr | _Range


def _tokens(template: str) -> list[tuple[str, str]]:
    """("text", ...) and ("expr", ...) pieces; braces inside quoted literals do not count."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(template):
        start = template.find("{", i)
        if start < 0:
            out.append(("text", template[i:]))
            break
        if start > i:
            out.append(("text", template[i:start]))
        j, quote = start + 1, ""
        while j < len(template):
            ch = template[j]
            if quote:
                if ch == "\\":
                    j += 1
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "}":
                break
            j += 1
        if j >= len(template):
            raise JSONPathError(f"unclosed action in {template!r}")
        out.append(("expr", template[start + 1 : j].strip()))
        i = j + 1
    return out


def parse(template: str) -> tuple[Node, ...]:
    stack: list[tuple[str, list[Node]]] = [("", [])]
    for kind, value in _tokens(template):
        if kind == "text":
            stack[-1][1].append(_Text(value))
        elif value.startswith("range "):
            stack.append((value[len("range ") :].strip(), []))
        elif value == "end":
            if len(stack) == 1:
                raise JSONPathError("{end} without {range}")
            path, body = stack.pop()
            stack[-1][1].append(_Range(path, tuple(body)))
        elif value[:1] in "\"'" and value[-1:] == value[:1] and len(value) >= 2:
            stack[-1][1].append(_Text(_unquote(value)))
        else:
            stack[-1][1].append(_Expr(value))
    if len(stack) != 1:
        raise JSONPathError("{range} without {end}")
    return tuple(stack[0][1])


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return body.encode("utf-8").decode("unicode_escape") if "\\" in body else body


def _split_key(path: str, i: int) -> tuple[str, int]:
    key = []
    while i < len(path) and path[i] not in ".[":
        if path[i] == "\\" and i + 1 < len(path):
            i += 1
        key.append(path[i])
        i += 1
    return "".join(key), i


def _bracket(path: str, i: int) -> tuple[str, int]:
    depth, j, quote = 0, i, ""
    while j < len(path):
        ch = path[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return path[i + 1 : j], j + 1
        j += 1
    raise JSONPathError(f"unterminated [ in {path!r}")


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _descendants(value: Any) -> list[Any]:
    out = [value]
    for child in _children(value):
        out.extend(_descendants(child))
    return out


_COMPARE = re.compile(r"^(@[^=!<>]*?)\s*(==|!=|<=|>=|<|>)\s*(.+)$")


def _literal(text: str) -> Any:
    text = text.strip()
    if text[:1] in "\"'" and text[-1:] == text[:1]:
        return text[1:-1]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _filter(items: list[Any], expression: str) -> list[Any]:
    match = _COMPARE.match(expression)
    out = []
    for item in items:
        for candidate in _children(item):
            if match is None:
                if evaluate(expression.strip(), candidate):
                    out.append(candidate)
                continue
            left = evaluate(match.group(1).strip(), candidate)
            right, op = _literal(match.group(3)), match.group(2)
            if any(_compare(v, op, right) for v in left):
                out.append(candidate)
    return out


def _compare(left: Any, op: str, right: Any) -> bool:
    try:
        if op == "==":
            return bool(left == right)
        if op == "!=":
            return bool(left != right)
        if op == "<":
            return bool(left < right)
        if op == ">":
            return bool(left > right)
        if op == "<=":
            return bool(left <= right)
        return bool(left >= right)
    except TypeError:
        return False


def _index(items: list[Any], spec: str) -> list[Any]:
    spec = spec.strip()
    if spec.startswith("?(") and spec.endswith(")"):
        return _filter(items, spec[2:-1])
    if spec[:1] in "\"'":
        key = _literal(spec)
        return [i[key] for i in items if isinstance(i, dict) and key in i]
    out: list[Any] = []
    for item in items:
        if spec == "*":
            out.extend(_children(item))
        elif not isinstance(item, list):
            continue
        elif ":" in spec:
            start, _, stop = spec.partition(":")
            out.extend(item[int(start) if start else None : int(stop.split(":")[0]) if stop else None])
        else:
            try:
                out.append(item[int(spec)])
            except (IndexError, ValueError):
                continue
    return out


def evaluate(path: str, root: Any) -> list[Any]:
    """Every value `path` selects from `root`."""
    items = [root]
    i = 1 if path[:1] in "$@" else 0
    while i < len(path):
        if path.startswith("..", i):
            key, i = _split_key(path, i + 2)
            items = [d[key] for v in items for d in _descendants(v) if isinstance(d, dict) and key in d]
        elif path[i] == ".":
            key, i = _split_key(path, i + 1)
            if not key:
                continue
            items = (
                [v[key] for v in items if isinstance(v, dict) and key in v]
                if key != "*"
                else [c for v in items for c in _children(v)]
            )
        elif path[i] == "[":
            spec, i = _bracket(path, i)
            items = _index(items, spec)
        else:
            key, i = _split_key(path, i)
            items = [v[key] for v in items if isinstance(v, dict) and key in v]
    return items


def _format(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _render(nodes: tuple[Node, ...], data: Any) -> str:
    out = []
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Expr):
            out.append(" ".join(_format(v) for v in evaluate(node.path, data)))
        else:
            out.extend(_render(node.body, item) for item in evaluate(node.path, data))
    return "".join(out)


def render(template: str, data: Any) -> str:
    return _render(parse(template), data)
