import re

import pytest

from services.machinery import fields
from services.machinery.fields import FieldSelectorError
from services.machinery.kinds import REGISTRY

POD_FIELDS = {"metadata.name": "web-1", "spec.nodeName": "node-a", "status.phase": "Running"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("spec.nodeName=node-a", True),
        ("spec.nodeName==node-a", True),
        ("spec.nodeName!=node-a", False),
        ("spec.nodeName=", False),
        ("status.phase=Running,metadata.name=web-1", True),
        ("status.phase=Running,metadata.name!=web-1", False),
    ],
)
def test_match(text: str, expected: bool) -> None:
    assert fields.parse(text).matches(POD_FIELDS) is expected


def test_escaped_values_round_trip() -> None:
    selector = fields.parse(r"metadata.name=a\,b\=c\\d")
    assert selector.requirements[0].value == "a,b=c\\d"
    assert fields.parse(str(selector)) == selector


def test_exact_value_lets_an_index_answer() -> None:
    selector = fields.parse("spec.nodeName=node-a,status.phase!=Failed")
    assert selector.exact_value("spec.nodeName") == "node-a"
    assert selector.exact_value("status.phase") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spec.nodeName", "can't understand"),
        ("=x", "field label is empty"),
        (r"metadata.name=a\x", "invalid escape sequence"),
    ],
)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(FieldSelectorError, match=re.escape(message)):
        fields.parse(text)


def test_unsupported_field_label_is_refused_per_kind() -> None:
    pods = REGISTRY.by_name("pods")
    fields.parse("spec.nodeName=a,status.phase=Running", pods.field_labels())
    with pytest.raises(FieldSelectorError, match=re.escape("field label not supported: spec.bogus")):
        fields.parse("spec.bogus=a", pods.field_labels())
    with pytest.raises(FieldSelectorError, match=re.escape("metadata.namespace")):
        fields.parse("metadata.namespace=x", REGISTRY.by_name("nodes").field_labels())
