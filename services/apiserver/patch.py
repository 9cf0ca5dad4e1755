"""The three patch formats Kubernetes accepts, applied to the manifest (JSON) form of an
object: JSON merge patch (RFC 7386), strategic merge patch (lists of named things merge by
their key instead of being replaced), and JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
from typing import Any

from services.machinery.mergekeys import MERGED_PRIMITIVE_LISTS, merge_key


class PatchError(ValueError):
    """The patch is malformed or does not apply."""


# --------------------------------------------------------------------------- RFC 7386


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --------------------------------------------------------------------------- strategic merge


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, path, key)
        else:
            merged = strategic_merge_patch(result.get(key), value, (*path, key))
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_list(current: Any, patch: list[Any], path: tuple[str, ...], field: str) -> list[Any]:
    current = current if isinstance(current, list) else []
    if field in MERGED_PRIMITIVE_LISTS:
        merged_values: list[Any] = current + [v for v in patch if v not in current]
        return merged_values
    key = merge_key(path, field)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return copy.deepcopy([i for i in patch if not (isinstance(i, dict) and i.get("$patch"))])
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return copy.deepcopy([i for i in patch if i.get("$patch") != "replace"])
    merged = [copy.deepcopy(item) for item in current]
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        index = next(
            (
                i
                for i, existing in enumerate(merged)
                if isinstance(existing, dict) and existing.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
            continue
        if index is None:
            merged.append(strategic_merge_patch({}, item, (*path, field)))
        else:
            merged[index] = strategic_merge_patch(merged[index], item, (*path, field))
    return merged


# --------------------------------------------------------------------------- RFC 6902


def _pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, parts[-1]


def _get(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _remove(doc: Any, parts: list[str]) -> Any:
    parent, last = _parent(doc, parts)
    return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _parent(doc, parts)
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be an array of operations")
    doc = copy.deepcopy(target)
    for number, op in enumerate(operations):
        try:
            kind, parts = op["op"], _pointer(op["path"])
            if kind == "add":
                doc = _add(doc, parts, copy.deepcopy(op["value"]))
            elif kind == "remove":
                _remove(doc, parts)
            elif kind == "replace":
                _get(doc, parts)
                if parts:
                    parent, last = _parent(doc, parts)
                    parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op["value"])
                else:
                    doc = copy.deepcopy(op["value"])
            elif kind in ("move", "copy"):
                source = _pointer(op["from"])
                value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
                doc = _add(doc, parts, value)
            elif kind == "test":
                if _get(doc, parts) != op["value"]:
                    raise PatchError(f"test operation {number} failed at {op['path']}")
            else:
                raise PatchError(f"unknown JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            if isinstance(exc, PatchError):
                raise
            raise PatchError(f"JSON patch operation {number} ({op!r}) does not apply: {exc}") from None
    return doc
