"""The client configuration file as a document `pinctl config` reads and edits: named lists of
clusters, users and contexts plus the current context, written back with mode 0600 because
it may hold keys and tokens."""

from __future__ import annotations

import base64
import copy
import os
from pathlib import Path
from typing import Any

import yaml

from services.cli.errors import CLIError

_SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}
_SECRET_DATA = ("certificate-authority-data", "client-certificate-data", "client-key-data")
REDACTED_DATA = "DATA+OMITTED"
REDACTED = "REDACTED"


class KubeConfig:
    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path = path
        self.document = document

    @classmethod
    def load(cls, path: Path, *, must_exist: bool = False) -> KubeConfig:
        if not path.exists():
            if must_exist:
                raise CLIError(f"cannot read client configuration {path}: it does not exist")
            return cls(path, empty())
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CLIError(f"cannot read client configuration {path}: {exc}") from None
        if not isinstance(document, dict):
            raise CLIError(f"{path} is not a client configuration")
        for section in _SECTIONS:
            document.setdefault(section, [])
            if not isinstance(document[section], list):
                raise CLIError(f"{path}: {section} must be a list")
        return cls(path, document)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.document, sort_keys=False, default_flow_style=False)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)

    @property
    def current_context(self) -> str:
        return str(self.document.get("current-context") or "")

    @current_context.setter
    def current_context(self, name: str) -> None:
        self.document["current-context"] = name

    def entries(self, section: str) -> list[dict[str, Any]]:
        return [e for e in self.document.get(section) or [] if isinstance(e, dict)]

    def find(self, section: str, name: str) -> dict[str, Any] | None:
        """The body (`cluster`, `user` or `context` mapping) of the named entry."""
        for entry in self.entries(section):
            if entry.get("name") == name:
                body = entry.setdefault(_SECTIONS[section], {})
                return body if isinstance(body, dict) else None
        return None

    def upsert(self, section: str, name: str) -> tuple[dict[str, Any], bool]:
        """The body of the named entry, created if absent; True if it was created."""
        body = self.find(section, name)
        if body is not None:
            return body, False
        body = {}
        self.document.setdefault(section, []).append({"name": name, _SECTIONS[section]: body})
        return body, True

    def remove(self, section: str, name: str) -> bool:
        before = self.entries(section)
        self.document[section] = [e for e in before if e.get("name") != name]
        return len(self.document[section]) != len(before)


def empty() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "contexts": [],
        "current-context": "",
        "preferences": {},
        "users": [],
    }


def redacted(document: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to show: embedded keys and certificates become DATA+OMITTED, tokens REDACTED."""
    shown = copy.deepcopy(document)
    for section, body_key in _SECTIONS.items():
        for entry in shown.get(section) or []:
            body = entry.get(body_key) if isinstance(entry, dict) else None
            if not isinstance(body, dict):
                continue
            for key in _SECRET_DATA:
                if key in body:
                    body[key] = REDACTED_DATA
            if "token" in body:
                body["token"] = REDACTED
    return shown


def minified(document: dict[str, Any], context: str) -> dict[str, Any]:
    """Only the current context and the cluster and user it names."""
    if not context:
        raise CLIError("current-context must exist in order to minify")
    config = KubeConfig(Path(), copy.deepcopy(document))
    body = config.find("contexts", context)
    if body is None:
        raise CLIError(f"cannot locate context {context}")
    keep = {"contexts": context, "clusters": body.get("cluster", ""), "users": body.get("user", "")}
    for section, name in keep.items():
        config.document[section] = [e for e in config.entries(section) if e.get("name") == name]
    return config.document


def flattened(document: dict[str, Any], base: Path) -> dict[str, Any]:
    """Certificate and key files embedded as *-data, so the document stands alone."""
    flat = copy.deepcopy(document)
    for section, body_key in _SECTIONS.items():
        for entry in flat.get(section) or []:
            body = entry.get(body_key) if isinstance(entry, dict) else None
            if not isinstance(body, dict):
                continue
            for key in ("certificate-authority", "client-certificate", "client-key"):
                if key in body:
                    path = Path(body.pop(key))
                    data = (path if path.is_absolute() else base / path).read_bytes()
                    body[f"{key}-data"] = base64.b64encode(data).decode("ascii")
    return flat
