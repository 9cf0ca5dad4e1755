"""Secrets never reach a log line."""

from __future__ import annotations

import io
import sys

import structlog

from services.machinery.logs import configure_logging


def test_secret_fields_are_redacted(monkeypatch) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging("test", json_output=True)
    structlog.get_logger("t").info(
        "request",
        token="abc.def.ghi",
        password="hunter2",
        data={"k": "s3cret"},
        authorization="Bearer xyz",
        name="visible",
    )
    structlog.reset_defaults()
    line = buffer.getvalue()
    for secret in ("abc.def.ghi", "hunter2", "s3cret", "Bearer xyz"):
        assert secret not in line
    assert "visible" in line and line.count("[redacted]") == 4
