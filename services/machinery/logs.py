"""structlog, configured once per process: JSON lines in production (one object per event,
with the component name, for log shippers), a readable console format on a terminal."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import structlog

_SECRET_KEYS = frozenset({"token", "password", "data", "string_data", "authorization"})


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Secrets never reach a log line, whatever a caller passes."""
    for key in _SECRET_KEYS & event.keys():
        event[key] = "[redacted]"
    return event


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time of the write, not at configuration time:
    a program that swaps stderr (a test harness capturing output, a daemon redirecting it)
    must not leave the loggers writing to a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(component: str, *, json_output: bool | None = None, level: str | None = None) -> None:
    """Set up structlog and the standard library's root logger for one program.

    json_output defaults to JSON unless stderr is a terminal; PINNACE_LOG_FORMAT=json|console
    and PINNACE_LOG_LEVEL override both defaults.
    """
    fmt = os.environ.get("PINNACE_LOG_FORMAT")
    if json_output is None:
        json_output = fmt == "json" if fmt else not sys.stderr.isatty()
    level_name = (level or os.environ.get("PINNACE_LOG_LEVEL", "INFO")).upper()
    numeric_level = logging.getLevelNamesMapping().get(level_name, logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(component=component)
    logging.basicConfig(level=numeric_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
