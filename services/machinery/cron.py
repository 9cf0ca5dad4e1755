"""Standard five-field cron schedules, as CronJob uses them ("*/5 * * * *", "@hourly").

Parsed once into sets of allowed values per field, so finding the next run is a walk over
minutes that skips whole hours and days when they cannot match.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_SEARCH_LIMIT = dt.timedelta(days=366 * 5)


class CronError(ValueError):
    """The schedule is not valid cron."""


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    # Cron ORs day-of-month and day-of-week when both are restricted.
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: dt.datetime) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first scheduled minute strictly after `moment`."""
        candidate = moment.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        limit = moment + _SEARCH_LIMIT
        while candidate <= limit:
            if not self.matches_day(candidate):
                candidate = (candidate + dt.timedelta(days=1)).replace(hour=0, minute=0)
            elif candidate.hour not in self.hours:
                candidate = (candidate + dt.timedelta(hours=1)).replace(minute=0)
            elif candidate.minute not in self.minutes:
                candidate += dt.timedelta(minutes=1)
            else:
                return candidate
        raise CronError("schedule never fires")


def _value(text: str, low: int, high: int, names: list[str] | None, field: str) -> int:
    if names and text.lower() in names:
        return names.index(text.lower()) + (1 if names is _MONTHS else 0)
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}: invalid {field}")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{field} value {value} out of range [{low}, {high}]")
    return value


def _parse_field(
    text: str, low: int, high: int, names: list[str] | None, field: str
) -> tuple[set[int], bool]:
    values: set[int] = set()
    restricted = True
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = _value(step_text, 1, high, None, field) if step_text else 1
        if base in ("*", "?"):
            start, end = low, high
            restricted = restricted and bool(step_text)
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, low, high, names, field), _value(last, low, high, names, field)
            if start > end:
                raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {base}")
        else:
            start = _value(base, low, high, names, field)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    if text in ("*", "?"):
        restricted = False
    return values, restricted


def parse(schedule: str) -> Schedule:
    text = _MACROS.get(schedule.strip(), schedule.strip())
    parts = text.split()
    if len(parts) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(parts)}: {schedule}")
    parsed = [
        _parse_field(p, low, high, names, name)
        for p, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = {0 if d == 7 else d for d in parsed[4][0]}
    return Schedule(
        frozenset(parsed[0][0]),
        frozenset(parsed[1][0]),
        frozenset(parsed[2][0]),
        frozenset(parsed[3][0]),
        frozenset(weekdays),
        parsed[2][1],
        parsed[4][1],
    )
