"""The building blocks of `pinctl describe` output: kubectl's prefix writer (two spaces per
level, tab-separated cells aligned by a tabwriter with padding 2) and the multi-line forms it
uses for labels, annotations, taints, tolerations and the Events table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.core.v1 import core_pb2
from services.cli.printers import tabwrite
from services.cli.tables import event_times

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_MAX_ANNOTATION = 140


class Writer:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, level: int, text: str) -> None:
        self.parts.append("  " * level + text)

    def line(self, level: int, *cells: object) -> None:
        """One line of tab-separated cells."""
        self.write(level, "\t".join(str(c) for c in cells) + "\n")

    def render(self) -> str:
        return tabwrite("".join(self.parts))


def timestamp(ts: Timestamp) -> str:
    """Go's RFC1123Z in local time, as kubectl prints times in describe."""
    moment = ts.ToDatetime(tzinfo=dt.UTC).astimezone()
    return moment.strftime("%a, %d %b %Y %H:%M:%S %z")


def is_set(ts: Timestamp) -> bool:
    return bool(ts.seconds or ts.nanos)


def multiline(w: Writer, title: str, values: Sequence[str], *, indent: str = "", inner: str = "\t") -> None:
    """`Title:<tab>first` then `<tab>next` per further value, `<none>` when empty."""
    w.write(0, f"{indent}{title}:{inner}")
    if not values:
        w.write(0, "<none>\n")
        return
    for i, value in enumerate(values):
        if i:
            w.write(0, f"{indent}{inner}")
        w.write(0, value + "\n")


def label_lines(w: Writer, title: str, values: Mapping[str, str], indent: str = "") -> None:
    multiline(w, title, [f"{k}={v}" for k, v in sorted(values.items())], indent=indent)


def annotation_lines(w: Writer, values: Mapping[str, str], indent: str = "") -> None:
    shown = []
    for key, value in sorted(values.items()):
        if key == LAST_APPLIED:
            continue
        text = value if len(value) <= _MAX_ANNOTATION else value[: _MAX_ANNOTATION - 3] + "..."
        shown.append(f"{key}: {text}")
    multiline(w, "Annotations", shown, indent=indent)


def taint_text(taint: core_pb2.Taint) -> str:
    text = taint.key + (f"={taint.value}" if taint.value else "")
    return f"{text}:{taint.effect}"


def toleration_text(toleration: core_pb2.Toleration) -> str:
    text = toleration.key + (f"={toleration.value}" if toleration.value else "")
    if toleration.effect:
        text += f":{toleration.effect}"
    if toleration.operator == "Exists" and not toleration.value:
        text += " op=Exists" if toleration.key or toleration.effect else "op=Exists"
    if toleration.HasField("toleration_seconds"):
        text += f" for {toleration.toleration_seconds}s"
    return text


def events(w: Writer, items: Sequence[core_pb2.Event], now: dt.datetime) -> None:
    """The Events table every describer ends with, oldest first."""
    if not items:
        w.write(0, "Events:\t<none>\n")
        return
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(1, "----\t------\t----\t----\t-------\n")

    def last_seen(event: core_pb2.Event) -> tuple[int, int]:
        ts = event.last_timestamp if is_set(event.last_timestamp) else event.event_time
        return ts.seconds, ts.nanos

    for event in sorted(items, key=last_seen):
        last, first, count = event_times(event, now)
        interval = last if event.HasField("series") or count > 1 else first
        source = event.source.component or event.reporting_component
        w.line(1, event.type, event.reason, interval, source, event.message.strip())
