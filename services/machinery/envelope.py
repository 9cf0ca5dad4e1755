"""The typed envelope of the API: every object crosses the wire inside the
pinnace.apiserver.v1.Object oneof. wrap/unwrap convert between it and the kind's message."""

from __future__ import annotations

from google.protobuf.message import Message

from pinnace.apiserver.v1 import apiserver_pb2

_FIELD_BY_MESSAGE = {
    field.message_type.full_name: field.name
    for field in apiserver_pb2.Object.DESCRIPTOR.fields
    if field.message_type is not None
}


class EnvelopeError(ValueError):
    """The object is of a kind the API does not carry, or the envelope is empty."""


def oneof_field(message_type: type[Message]) -> str:
    name = _FIELD_BY_MESSAGE.get(message_type.DESCRIPTOR.full_name)
    if name is None:
        raise EnvelopeError(f"{message_type.DESCRIPTOR.full_name} cannot be sent as an API object")
    return name


def wrap(obj: Message) -> apiserver_pb2.Object:
    envelope = apiserver_pb2.Object()
    getattr(envelope, oneof_field(type(obj))).CopyFrom(obj)
    return envelope


def unwrap(envelope: apiserver_pb2.Object) -> Message:
    which = envelope.WhichOneof("kind")
    if which is None:
        raise EnvelopeError("object is empty: set exactly one kind in the Object oneof")
    message: Message = getattr(envelope, which)
    return message


def carried(message_type: type[Message]) -> bool:
    return message_type.DESCRIPTOR.full_name in _FIELD_BY_MESSAGE
