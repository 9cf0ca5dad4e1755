import datetime as dt

import pytest

from services.machinery import cron


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/15 * * * *", dt.datetime(2026, 1, 1, 10, 7), dt.datetime(2026, 1, 1, 10, 15)),
        ("0 * * * *", dt.datetime(2026, 1, 1, 10, 0), dt.datetime(2026, 1, 1, 11, 0)),
        ("@daily", dt.datetime(2026, 1, 1, 10, 0), dt.datetime(2026, 1, 2, 0, 0)),
        ("30 9 * * mon-fri", dt.datetime(2026, 11, 21, 12, 0), dt.datetime(2026, 11, 23, 9, 30)),
        ("0 0 1 jan *", dt.datetime(2026, 3, 1), dt.datetime(2027, 1, 1)),
        ("0 0 13 * 5", dt.datetime(2026, 11, 21), dt.datetime(2026, 11, 27)),
        ("0 12 * * 7", dt.datetime(2026, 11, 21), dt.datetime(2026, 11, 22, 12, 0)),
    ],
)
def test_next_after(schedule: str, after: dt.datetime, expected: dt.datetime) -> None:
    assert cron.parse(schedule).next_after(after) == expected


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("* * *", "exactly 5 fields"),
        ("60 * * * *", "out of range"),
        ("x * * * *", "failed to parse int"),
        ("5-1 * * * *", "beyond end of range"),
        ("* * 0 * *", "out of range"),
    ],
)
def test_invalid(bad: str, message: str) -> None:
    with pytest.raises(cron.CronError, match=message):
        cron.parse(bad)
