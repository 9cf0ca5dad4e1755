"""Output forms every command shares: kubectl's `kind.group/name` form, YAML and JSON of one
object or a List, aligned tables (Go tabwriter's layout, as kubectl prints them) and ages."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import yaml
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.machinery import codec
from services.machinery.kinds import REGISTRY, KindInfo

# kubectl's tabwriter: minimum cell width 6, three spaces between columns.
_MIN_WIDTH = 6
_PADDING = 3


def kind_label(info: KindInfo) -> str:
    """`pod`, `deployment.apps`, `role.rbac.authorization.k8s.io`: the name form's prefix."""
    return f"{info.singular}.{info.group}" if info.group else info.singular


def name_of(obj: Message) -> str:
    """`pod/web`, `deployment.apps/web` (`-o name` and the apply/delete messages)."""
    info = REGISTRY.by_message(obj)
    return f"{kind_label(info)}/{obj.metadata.name}"  # type: ignore[attr-defined]


def encode(obj: Message) -> dict[str, Any]:
    return codec.encode_object(obj)


def as_list(objects: Sequence[Message], resource_version: str = "") -> dict[str, Any]:
    """kubectl's `kind: List` wrapper for several objects."""
    return {
        "apiVersion": "v1",
        "items": [encode(o) for o in objects],
        "kind": "List",
        "metadata": {"resourceVersion": resource_version},
    }


class _Dumper(yaml.SafeDumper):
    """YAML as kubectl (go-yaml) writes it: double quotes where quoting is needed, block
    literals for multi-line strings, no line wrapping."""

    def choose_scalar_style(self) -> str:
        style: str = super().choose_scalar_style()
        return '"' if style == "'" else style


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def to_yaml(document: Any) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=2**31 - 1)


def dump(document: dict[str, Any], output: str) -> str:
    """YAML or JSON text of an encoded document, keys sorted as kubectl prints them."""
    if output == "json":
        return json.dumps(document, indent=4, sort_keys=True) + "\n"
    if output == "yaml":
        return to_yaml(document)
    raise ValueError(f"unsupported output {output!r}")


def format_objects(objects: Sequence[Message], output: str, *, single: bool) -> str:
    """One object as itself when `single` (a `get TYPE NAME`), else a List."""
    if single and len(objects) == 1:
        return dump(encode(objects[0]), output)
    return dump(as_list(objects), output)


class StreamTable:
    """Go's tabwriter layout with kubectl's settings: every column but the last padded to
    max(6, widest cell + 3). Rows printed later (watch events) keep the widths seen so far,
    widening a column only when a new cell does not fit."""

    def __init__(self) -> None:
        self.widths: list[int] = []

    def render(self, rows: Sequence[Sequence[str]]) -> str:
        for row in rows:
            for i, cell in enumerate(row[:-1]):
                if i == len(self.widths):
                    self.widths.append(_MIN_WIDTH)
                self.widths[i] = max(self.widths[i], len(cell) + _PADDING)
        lines = []
        for row in rows:
            cells = [cell.ljust(self.widths[i]) for i, cell in enumerate(row[:-1])]
            lines.append("".join(cells) + (row[-1] if row else ""))
        return "".join(line + "\n" for line in lines)


def render_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows (the header first) laid out as kubectl prints a table."""
    return StreamTable().render(rows)


def human_duration(seconds: float) -> str:
    """Kubernetes' duration.HumanDuration: 5s, 3m2s, 15m, 4h5m, 10h, 2d3h, 30d, 2y10d."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def age(timestamp: Timestamp, now: dt.datetime | None = None) -> str:
    """The AGE column: `<unknown>` for an unset timestamp, as kubectl prints it."""
    if timestamp.seconds == 0 and timestamp.nanos == 0:
        return "<unknown>"
    moment = now or dt.datetime.now(dt.UTC)
    return human_duration((moment - timestamp.ToDatetime(tzinfo=dt.UTC)).total_seconds())


def tabwrite(text: str, *, min_width: int = 0, padding: int = 2) -> str:
    """Go's text/tabwriter over tab-separated text (as kubectl describe writes through it):
    a column is aligned over each run of consecutive lines that have a cell in it, and the
    text after a line's last tab is not a cell."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    _format_block(lines, 0, len(lines), [], out, min_width, padding)
    return "\n".join(out)


def _format_block(
    lines: list[list[str]],
    start: int,
    end: int,
    widths: list[int],
    out: list[str],
    min_width: int,
    padding: int,
) -> None:
    column = len(widths)
    line0 = start
    this = start
    while this < end:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _write_lines(lines, line0, this, widths, out)
        line0 = this
        width = min_width
        while this < end and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)
            this += 1
        _format_block(lines, line0, this, [*widths, width], out, min_width, padding)
        line0 = this
    _write_lines(lines, line0, end, widths, out)


def _write_lines(lines: list[list[str]], start: int, end: int, widths: list[int], out: list[str]) -> None:
    for cells in lines[start:end]:
        text = []
        for i, cell in enumerate(cells):
            if i < len(cells) - 1 and i < len(widths):
                text.append(cell.ljust(widths[i]))
            else:
                text.append(cell)
        out.append("".join(text))
