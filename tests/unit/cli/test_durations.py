"""Go durations as kubectl's --timeout, --update-period and --poll-interval take them."""

from __future__ import annotations

import pytest

from services.cli.ops.duration import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("300ms", 0.3),
        ("2h", 7200.0),
        ("1.5s", 1.5),
        ("-1s", -1.0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", 'time: missing unit in duration "5"'),
        ("soon", 'time: invalid duration "soon"'),
        ("5x", 'time: invalid duration "5x"'),
        ("", 'time: invalid duration ""'),
        ("1m 2s", 'time: invalid duration "1m 2s"'),
    ],
)
def test_refuse(text: str, message: str) -> None:
    with pytest.raises(DurationError, match=message):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (5, "5s"), (60, "1m0s"), (300, "5m0s"), (90, "1m30s"), (0.5, "500ms")]
)
def test_format_like_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
