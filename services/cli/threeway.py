"""kubectl apply's three-way strategic merge patch: from the last applied configuration
(original), the manifest (modified) and the live object (current), a patch that sets what the
manifest sets and removes only what an earlier apply set and the manifest no longer has, so
fields other writers own (defaults, status, a controller's labels) survive."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.message import Message

from services.machinery import codec
from services.machinery.mergekeys import merge_key

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def last_applied_text(obj: Message) -> str:
    """The annotation's value: the manifest as JSON with sorted keys, without the annotation."""
    document = codec.encode_object(obj)
    annotations = document.get("metadata", {}).get("annotations", {})
    annotations.pop(LAST_APPLIED, None)
    if not annotations and "annotations" in document.get("metadata", {}):
        del document["metadata"]["annotations"]
    return json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n"


def original_of(current: Message) -> dict[str, Any] | None:
    text = current.metadata.annotations.get(LAST_APPLIED)  # type: ignore[attr-defined]
    if not text:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def three_way_patch(
    original: dict[str, Any] | None, modified: dict[str, Any], current: dict[str, Any]
) -> dict[str, Any]:
    return _map(original or {}, modified, current, ())


def _keyed_list(items: Any, path: tuple[str, ...], field: str) -> str | None:
    key = merge_key(path, field)
    if key is None or not isinstance(items, list) or not all(isinstance(i, dict) and key in i for i in items):
        return None
    return key


def _map(
    original: dict[str, Any], modified: dict[str, Any], current: dict[str, Any], path: tuple[str, ...]
) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key, wanted in modified.items():
        live = current.get(key)
        before = original.get(key)
        if isinstance(wanted, dict) and isinstance(live, dict):
            sub = _map(before if isinstance(before, dict) else {}, wanted, live, (*path, key))
            if sub:
                patch[key] = sub
            continue
        if isinstance(wanted, list) and isinstance(live, list):
            merge = _keyed_list(wanted, path, key)
            if merge is not None and _keyed_list(live, path, key) == merge:
                items = _list(before if isinstance(before, list) else [], wanted, live, merge, (*path, key))
                if items:
                    patch[key] = items
                continue
        if live != wanted:
            patch[key] = wanted
    for key in original:
        if key not in modified and key in current:
            patch[key] = None
    return patch


def _find(items: list[Any], key: str, value: Any) -> dict[str, Any] | None:
    return next((i for i in items if isinstance(i, dict) and i.get(key) == value), None)


def _list(
    original: list[Any], modified: list[Any], current: list[Any], key: str, path: tuple[str, ...]
) -> list[Any]:
    patch: list[Any] = []
    for wanted in modified:
        live = _find(current, key, wanted[key])
        if live is None:
            patch.append(wanted)
            continue
        before = _find(original, key, wanted[key]) or {}
        sub = _map(before, wanted, live, path)
        if sub:
            patch.append({key: wanted[key], **sub})
    for before in original:
        value = before.get(key) if isinstance(before, dict) else None
        if (
            value is not None
            and _find(modified, key, value) is None
            and _find(current, key, value) is not None
        ):
            patch.append({key: value, "$patch": "delete"})
    return patch
