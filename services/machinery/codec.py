"""The manifest codec: Kubernetes-shaped YAML/JSON into the protos and back.

Kubernetes manifests are almost proto3 JSON, but not quite: IntOrString fields are bare
scalars, quantities may be YAML numbers, int64 values are JSON numbers, timestamps are RFC 3339
strings, and unknown fields must be refused with their path. One descriptor-driven walker
handles all of that for every kind, so no per-kind code exists here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import yaml
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.meta.v1 import meta_pb2
from services.machinery import errors as ferr
from services.machinery.errors import FieldError, ValidationError
from services.machinery.kinds import REGISTRY, KindInfo, UnknownKindError
from services.machinery.quantity import QuantityError, canonicalize

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_INT_OR_STRING = meta_pb2.IntOrString.DESCRIPTOR.full_name
_TIMESTAMP = Timestamp.DESCRIPTOR.full_name


class ManifestError(ValidationError):
    """A manifest document that does not decode; carries every field error found."""


@dataclass(frozen=True)
class Decoded:
    """One decoded document: the kind it names and the typed object."""

    info: KindInfo
    obj: Message


# ---------------------------------------------------------------------- field tables


@cache
def _fields_by_json_name(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    return {f.json_name: f for f in descriptor.fields}


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def _map_value_field(field: FieldDescriptor) -> FieldDescriptor:
    entry = field.message_type
    assert entry is not None
    return entry.fields_by_name["value"]


@cache
def _is_quantity(field: FieldDescriptor) -> bool:
    options: Any = field.GetOptions()
    return bool(options.Extensions[meta_pb2.quantity])


# ---------------------------------------------------------------------- decoding


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


class _Decoder:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def wrong_type(self, path: str, value: Any, expected: str) -> None:
        self.errors.append(ferr.type_invalid(path, value, f"expected {expected}, got {_type_name(value)}"))

    def message(self, target: Message, data: Any, path: str, skip: frozenset[str] = frozenset()) -> None:
        if not isinstance(data, dict):
            self.wrong_type(path or "<root>", data, "object")
            return
        fields = _fields_by_json_name(target.DESCRIPTOR)
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if key in skip:
                continue
            field = fields.get(key) if isinstance(key, str) else None
            if field is None:
                self.errors.append(ferr.unknown_field(child))
                continue
            if value is None:
                continue
            self.field(target, field, value, child)

    def field(self, target: Message, field: FieldDescriptor, value: Any, path: str) -> None:
        if _is_map(field):
            self.map_field(target, field, value, path)
        elif field.is_repeated:
            if not isinstance(value, list):
                self.wrong_type(path, value, "array")
                return
            container = getattr(target, field.name)
            for i, item in enumerate(value):
                item_path = f"{path}[{i}]"
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    if item is None:
                        self.errors.append(ferr.required(item_path))
                        continue
                    self.message_value(container.add(), item, item_path)
                else:
                    converted = self.scalar(field, item, item_path)
                    if converted is not None:
                        container.append(converted)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            sub = getattr(target, field.name)
            sub.SetInParent()
            self.message_value(sub, value, path)
        else:
            converted = self.scalar(field, value, path)
            if converted is not None:
                setattr(target, field.name, converted)

    def message_value(self, target: Message, value: Any, path: str) -> None:
        name = target.DESCRIPTOR.full_name
        if name == _INT_OR_STRING:
            self.int_or_string(target, value, path)
        elif name == _TIMESTAMP:
            self.timestamp(target, value, path)
        else:
            self.message(target, value, path)

    def int_or_string(self, target: Message, value: Any, path: str) -> None:
        assert isinstance(target, meta_pb2.IntOrString)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self.wrong_type(path, value, "integer or string")
        elif isinstance(value, int):
            if not -(2**31) <= value < 2**31:
                self.errors.append(ferr.invalid(path, value, "must fit in a 32-bit integer"))
            else:
                target.int_val = value
        else:
            target.str_val = value

    def timestamp(self, target: Message, value: Any, path: str) -> None:
        assert isinstance(target, Timestamp)
        if isinstance(value, dt.datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        elif isinstance(value, str):
            try:
                moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                self.errors.append(ferr.invalid(path, value, "must be an RFC 3339 timestamp"))
                return
            if moment.tzinfo is None:
                self.errors.append(ferr.invalid(path, value, "must be an RFC 3339 timestamp with a zone"))
                return
        else:
            self.wrong_type(path, value, "RFC 3339 timestamp string")
            return
        target.FromDatetime(moment)

    def map_field(self, target: Message, field: FieldDescriptor, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.wrong_type(path, value, "object")
            return
        value_field = _map_value_field(field)
        container = getattr(target, field.name)
        for key, item in value.items():
            item_path = f"{path}[{key}]"
            if not isinstance(key, str):
                self.wrong_type(item_path, key, "string key")
                continue
            if item is None:
                # A null map value is the empty string (Go decodes it to the zero value).
                if value_field.type == FieldDescriptor.TYPE_STRING:
                    container[key] = ""
                continue
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                self.message_value(container[key], item, item_path)
                continue
            converted = self.scalar(value_field, item, item_path, quantity=_is_quantity(field))
            if converted is not None:
                container[key] = converted

    def scalar(self, field: FieldDescriptor, value: Any, path: str, quantity: bool | None = None) -> Any:
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            if quantity if quantity is not None else _is_quantity(field):
                return self.quantity(value, path)
            if not isinstance(value, str):
                self.wrong_type(path, value, "string")
                return None
            return value
        if kind == FieldDescriptor.TYPE_BOOL:
            if not isinstance(value, bool):
                self.wrong_type(path, value, "boolean")
                return None
            return value
        if kind in _INT_RANGES:
            if isinstance(value, bool) or not isinstance(value, int):
                self.wrong_type(path, value, "integer")
                return None
            low, high = _INT_RANGES[kind]
            if not low <= value <= high:
                self.errors.append(ferr.invalid(path, value, f"must be between {low} and {high}"))
                return None
            return value
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.wrong_type(path, value, "number")
                return None
            return float(value)
        if kind == FieldDescriptor.TYPE_BYTES:
            if not isinstance(value, str):
                self.wrong_type(path, value, "base64 string")
                return None
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                self.errors.append(
                    ferr.invalid(
                        path, value, f"illegal base64 data at input byte {_first_bad_base64_byte(value)}"
                    )
                )
                return None
        if kind == FieldDescriptor.TYPE_ENUM:
            enum = field.enum_type
            assert enum is not None
            names = [v.name for v in enum.values]
            if value not in names:
                self.errors.append(ferr.not_supported(path, value, names))
                return None
            return enum.values_by_name[value].number
        raise TypeError(f"unsupported proto field type {kind} at {path}")

    def quantity(self, value: Any, path: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.wrong_type(path, value, "quantity")
            return None
        text = value if isinstance(value, str) else repr(value)
        try:
            return canonicalize(text)
        except QuantityError as exc:
            self.errors.append(ferr.invalid(path, value, str(exc)))
            return None


_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _first_bad_base64_byte(text: str) -> int:
    """Where Go's decoder would stop, so the message matches Kubernetes'."""
    for index, char in enumerate(text):
        if char not in _BASE64_ALPHABET:
            return index
    return len(text)


def decode_into(message: Message, data: Any, path: str = "") -> Message:
    """Fill `message` from a Kubernetes-shaped dict; raise ManifestError with every problem."""
    decoder = _Decoder()
    decoder.message(message, data, path, skip=frozenset({"apiVersion", "kind"}) if not path else frozenset())
    if decoder.errors:
        raise ManifestError(decoder.errors)
    return message


def decode_object(data: Any) -> Decoded:
    """Decode one manifest document (a dict with apiVersion and kind) into its typed message."""
    if not isinstance(data, dict):
        raise ManifestError(
            [ferr.type_invalid("<root>", data, f"expected an object, got {_type_name(data)}")]
        )
    api_version, kind = data.get("apiVersion"), data.get("kind")
    problems = []
    if not api_version:
        problems.append(ferr.required("apiVersion", "apiVersion must be set"))
    if not kind:
        problems.append(ferr.required("kind", "kind must be set"))
    if problems:
        raise ManifestError(problems)
    try:
        info = REGISTRY.by_gvk(str(api_version), str(kind))
    except UnknownKindError as exc:
        raise ManifestError(
            [ferr.invalid("apiVersion", api_version, str(exc))], f'{kind} "{_name_of(data)}"'
        ) from None
    obj = info.new()
    decoder = _Decoder()
    decoder.message(obj, data, "", skip=frozenset({"apiVersion", "kind"}))
    if decoder.errors:
        raise ManifestError(decoder.errors, f'{kind} "{_name_of(data)}"')
    return Decoded(info, obj)


def _name_of(data: dict[str, Any]) -> str:
    meta = data.get("metadata")
    if isinstance(meta, dict):
        return str(meta.get("name") or meta.get("generateName") or "")
    return ""


def iter_documents(text: str) -> Iterator[Any]:
    """The non-empty documents of a YAML or JSON stream; `kind: List` documents are flattened."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ManifestError([ferr.invalid("<document>", "", f"invalid YAML: {exc}")]) from None
    for doc in documents:
        if doc is None:
            continue
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and "items" in doc:
            yield from doc.get("items") or []
        else:
            yield doc


def decode_manifests(text: str) -> list[Decoded]:
    """Every object of a multi-document manifest, or ManifestError naming the bad document."""
    decoded = []
    for index, doc in enumerate(iter_documents(text)):
        try:
            decoded.append(decode_object(doc))
        except ManifestError as exc:
            subject = f"document {index}" + (f" ({exc.subject})" if exc.subject else "")
            raise ManifestError(exc.errors, subject) from None
    return decoded


# ---------------------------------------------------------------------- encoding


def _format_timestamp(ts: Timestamp) -> str:
    moment = ts.ToDatetime(tzinfo=dt.UTC)
    if ts.nanos == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode_scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        assert enum is not None
        return enum.values_by_number[value].name
    return value


def _encode_message_value(message: Message) -> Any:
    name = message.DESCRIPTOR.full_name
    if name == _INT_OR_STRING:
        assert isinstance(message, meta_pb2.IntOrString)
        which = message.WhichOneof("value")
        if which is None:
            return None
        return message.int_val if which == "int_val" else message.str_val
    if name == _TIMESTAMP:
        assert isinstance(message, Timestamp)
        return _format_timestamp(message)
    return encode_message(message)


def encode_message(message: Message) -> dict[str, Any]:
    """A message as a Kubernetes-shaped dict, omitting empty fields like Kubernetes' omitempty."""
    out: dict[str, Any] = {}
    for field in cast(list[FieldDescriptor], message.DESCRIPTOR.fields):
        value = getattr(message, field.name)
        if _is_map(field):
            if value:
                value_field = _map_value_field(field)
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    out[field.json_name] = {k: _encode_message_value(v) for k, v in sorted(value.items())}
                else:
                    out[field.json_name] = {
                        k: _encode_scalar(value_field, v) for k, v in sorted(value.items())
                    }
        elif field.is_repeated:
            if value:
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    out[field.json_name] = [_encode_message_value(v) for v in value]
                else:
                    out[field.json_name] = [_encode_scalar(field, v) for v in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if message.HasField(field.name):
                encoded = _encode_message_value(value)
                if encoded is not None:
                    out[field.json_name] = encoded
        elif field.has_presence:
            if message.HasField(field.name):
                out[field.json_name] = _encode_scalar(field, value)
        elif value != field.default_value:
            out[field.json_name] = _encode_scalar(field, value)
    return out


def encode_object(obj: Message) -> dict[str, Any]:
    """An object as a manifest dict: apiVersion and kind first, then its fields."""
    info = REGISTRY.by_message(obj)
    return {"apiVersion": info.api_version, "kind": info.kind, **encode_message(obj)}


def to_json(obj: Message, indent: int | None = 4) -> str:
    return json.dumps(encode_object(obj), indent=indent)


def to_yaml(obj: Message) -> str:
    return yaml.safe_dump(encode_object(obj), sort_keys=False, default_flow_style=False)


def from_yaml(text: str) -> Message:
    """Exactly one object from YAML or JSON text."""
    decoded = decode_manifests(text)
    if len(decoded) != 1:
        raise ManifestError([ferr.invalid("<document>", len(decoded), "expected exactly one object")])
    return decoded[0].obj
