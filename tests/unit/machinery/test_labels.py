import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinnace.api.meta.v1 import meta_pb2
from services.machinery import labels
from services.machinery.labels import Operator, SelectorError

POD = {"app": "web", "tier": "frontend", "track": "stable", "replicas": "5"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),
        ("tier", True),
        ("!tier", False),
        ("!canary", True),
        ("app=web,tier=frontend", True),
        ("app=web, tier=backend", False),
        ("replicas>3", True),
        ("replicas<3", False),
        ("missing>1", False),
        ("app=", False),
        ("example.com/role=x", False),
    ],
)
def test_parse_and_match(text: str, expected: bool) -> None:
    assert labels.parse(text).matches(POD) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a in ()", "values set can't be empty"),
        ("a b", "found 'b'"),
        ("!", "identifier after '!'"),
        ("a in (b,c", "found '', expected: ',' or ')'"),
        ("a=b,", "found '', expected: identifier"),
        ("A/b=c", "invalid label key"),
        ("a=-bad-", "invalid label value"),
        ("a>x", "must be an integer"),
        ("a in b", "expected: '('"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        labels.parse(text)


def test_string_form_is_sorted_and_canonical() -> None:
    selector = labels.parse("tier in (b, a), !canary , app = web")
    assert str(selector) == "app=web,!canary,tier in (a,b)"
    assert labels.parse(str(selector)) == selector


def test_label_selector_message_round_trip() -> None:
    message = meta_pb2.LabelSelector(match_labels={"app": "web"})
    message.match_expressions.add(key="tier", operator="In", values=["frontend", "api"])
    message.match_expressions.add(key="canary", operator="DoesNotExist")
    selector = labels.from_label_selector(message)
    assert str(selector) == "app=web,!canary,tier in (api,frontend)"
    assert selector.matches(POD)
    back = labels.to_label_selector(selector)
    assert dict(back.match_labels) == {"app": "web"}
    assert {(e.key, e.operator) for e in back.match_expressions} == {
        ("tier", "In"),
        ("canary", "DoesNotExist"),
    }


def test_absent_label_selector_selects_nothing_and_empty_everything() -> None:
    assert not labels.from_label_selector(None).matches(POD)
    assert labels.from_label_selector(meta_pb2.LabelSelector()).matches(POD)


def test_bad_label_selector_operator() -> None:
    message = meta_pb2.LabelSelector()
    message.match_expressions.add(key="a", operator="Gt", values=["1"])
    with pytest.raises(SelectorError, match="not a valid label selector operator"):
        labels.from_label_selector(message)


_keys = st.from_regex(
    r"\A([a-z]([a-z0-9-]{0,8}[a-z0-9])?\.[a-z]{2,4}/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,10}[A-Za-z0-9])?\Z"
)
_values = st.from_regex(r"\A([A-Za-z0-9]([A-Za-z0-9_.-]{0,10}[A-Za-z0-9])?)?\Z")
_requirements = st.one_of(
    st.builds(lambda k, v: labels.requirement(k, Operator.EQUALS, [v]), _keys, _values),
    st.builds(lambda k, v: labels.requirement(k, Operator.NOT_EQUALS, [v]), _keys, _values),
    st.builds(
        lambda k, vs: labels.requirement(k, Operator.IN, vs),
        _keys,
        st.lists(_values.filter(bool), min_size=1, max_size=3),
    ),
    st.builds(
        lambda k, vs: labels.requirement(k, Operator.NOT_IN, vs),
        _keys,
        st.lists(_values.filter(bool), min_size=1, max_size=3),
    ),
    st.builds(lambda k: labels.requirement(k, Operator.EXISTS), _keys),
    st.builds(lambda k: labels.requirement(k, Operator.DOES_NOT_EXIST), _keys),
    st.builds(
        lambda k, n: labels.requirement(k, Operator.GREATER_THAN, [str(n)]), _keys, st.integers(0, 999)
    ),
)


@given(st.lists(_requirements, max_size=5), st.dictionaries(_keys, _values, max_size=5))
def test_format_then_parse_round_trips(
    requirements: list[labels.Requirement], pod_labels: dict[str, str]
) -> None:
    selector = labels.Selector(labels._sorted(requirements))
    parsed = labels.parse(str(selector))
    assert str(parsed) == str(selector)
    assert parsed.matches(pod_labels) == selector.matches(pod_labels)
