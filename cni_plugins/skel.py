"""The plugin driver: CNI_* environment and stdin in, result or error JSON and exit code out.

It mirrors the reference `skel` package so every plugin validates input the same way, and it
takes the environment and stdin as values (not from the process) so the daemon's workers and
in-process delegation run exactly the code a plain executable runs.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cni_plugins.result import Result
from cni_plugins.spec import (
    ERR_INTERNAL,
    CniError,
    Invocation,
    check_config,
    decode_config,
    error_version,
    parse_env,
    version_answer,
)


class Plugin(Protocol):
    """What a plugin implements; the driver does validation, versions and encoding."""

    def add(self, inv: Invocation, conf: dict[str, Any]) -> Result | dict[str, Any]: ...

    def delete(self, inv: Invocation, conf: dict[str, Any]) -> None: ...

    def check(self, inv: Invocation, conf: dict[str, Any]) -> None: ...

    def gc(self, inv: Invocation, conf: dict[str, Any]) -> None: ...

    def status(self, inv: Invocation, conf: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Output:
    """What a plugin process would leave behind: exit code, stdout, stderr."""

    code: int
    stdout: bytes
    stderr: bytes = b""


def _encode(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, indent=4).encode() + b"\n"


def dispatch(plugin: Plugin, env: Mapping[str, str], stdin: bytes) -> Output:
    """Run one CNI command against `plugin`; never raises."""
    conf: dict[str, Any] | None = None
    try:
        inv = parse_env(env, stdin)
        if inv.command == "VERSION":
            return Output(0, _encode(version_answer(stdin)))
        conf = decode_config(stdin)
        version = check_config(conf, inv.command)
        if inv.command == "ADD":
            result = plugin.add(inv, conf)
            if isinstance(result, Result):
                return Output(0, _encode(result.to_dict(version)))
            return Output(0, _encode(result))
        if inv.command == "DEL":
            plugin.delete(inv, conf)
        elif inv.command == "CHECK":
            plugin.check(inv, conf)
        elif inv.command == "GC":
            plugin.gc(inv, conf)
        else:
            plugin.status(inv, conf)
        return Output(0, b"")
    except CniError as exc:
        return Output(1, _encode(exc.to_dict(error_version(conf))))
    except Exception as exc:
        err = CniError(ERR_INTERNAL, f"{type(exc).__name__}: {exc}")
        return Output(1, _encode(err.to_dict(error_version(conf))), traceback.format_exc().encode())
