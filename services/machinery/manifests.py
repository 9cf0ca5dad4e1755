"""Loading manifests the way `kubectl apply -f` reads them: files, folders and stdin, many
documents each, decoded, defaulted and validated, with errors that name the file."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from services.machinery.codec import Decoded, ManifestError, decode_manifests
from services.machinery.defaults import apply_defaults
from services.machinery.errors import ValidationError
from services.machinery.validation import validate

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Source:
    name: str
    text: str


class ManifestSourceError(ValueError):
    """A manifest file is missing, unreadable or invalid; the message names it."""


def read_sources(paths: Iterable[str], *, recursive: bool = True) -> list[Source]:
    """Every manifest named by paths: files, folders (their .yaml/.yml/.json files), or '-'."""
    sources: list[Source] = []
    for raw in paths:
        if raw == "-":
            sources.append(Source("<stdin>", sys.stdin.read()))
            continue
        path = Path(raw)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.suffix in MANIFEST_SUFFIXES and p.is_file())
            sources.extend(Source(str(p), p.read_text()) for p in files)
        elif path.is_file():
            sources.append(Source(str(path), path.read_text()))
        else:
            raise ManifestSourceError(f'the path "{raw}" does not exist')
    return sources


def load(source: Source, *, default_namespace: str = "default") -> list[Decoded]:
    """Decode, default and validate every object of one source.

    Namespaced objects without a namespace get `default_namespace`, as kubectl fills it from
    the context before sending them.
    """
    try:
        decoded = decode_manifests(source.text)
    except ManifestError as exc:
        raise ManifestSourceError(f'error validating "{source.name}": {exc}') from None
    for item in decoded:
        meta = item.obj.metadata  # type: ignore[attr-defined]
        if item.info.namespaced and not meta.namespace:
            meta.namespace = default_namespace
        apply_defaults(item.obj)
        problems = validate(item.obj)
        if problems:
            name = meta.name or meta.generate_name
            error = ValidationError(problems, f'{item.info.kind} "{name}"')
            raise ManifestSourceError(f'error validating "{source.name}": {error}')
    return decoded
