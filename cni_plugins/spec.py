"""CNI spec facts every plugin shares: versions, error codes and JSON, the CNI_* environment.

The spec (containernetworking/cni SPEC.md, 0.4.0 to 1.1.0) is the contract with any runtime;
keeping its vocabulary in one module means each plugin cannot drift on codes or wording.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_VERSIONS: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = "1.1.0"

# Well-known error codes (SPEC "Error" section); 999 is libcni's code for internal errors.
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO_FAILURE = 5
ERR_DECODE = 6
ERR_INVALID_CONFIG = 7
ERR_TRY_AGAIN_LATER = 11
ERR_NOT_AVAILABLE = 50
ERR_LIMITED_CONNECTIVITY = 51
ERR_INTERNAL = 999

COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")

# Which CNI_* variables each command needs (SPEC "Parameters"); CNI_PATH is only required
# by GC there, and by the plugins that delegate (checked where they delegate).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "GC": ("CNI_PATH",),
    "STATUS": (),
    "VERSION": (),
}

# Oldest config version that may use a command (the reference skel refuses older ones).
_MIN_VERSION = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_IFNAME_MAX = 15  # IFNAMSIZ - 1


class CniError(Exception):
    """An error a plugin reports to its runtime: exit code 1 and the spec's error JSON."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_dict(self, version: str) -> dict[str, Any]:
        """The error object, in the version the runtime asked for when we know it."""
        out: dict[str, Any] = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CniError:
        """Rebuild a delegated plugin's error so it reaches our runtime unchanged."""
        code = data.get("code")
        return cls(
            code if isinstance(code, int) else ERR_INTERNAL,
            str(data.get("msg", "")),
            str(data.get("details", "")),
        )

    def __repr__(self) -> str:
        return f"CniError({self.code}, {self.msg!r}, {self.details!r})"


def version_key(version: str) -> tuple[int, int, int] | None:
    """Semver triple of a cniVersion string, or None when it is not one."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def version_at_least(version: str, minimum: str) -> bool:
    """Whether `version` is at or above `minimum` (both supported, so both parse)."""
    have, want = version_key(version), version_key(minimum)
    return have is not None and want is not None and have >= want


def error_version(conf: Mapping[str, Any] | None) -> str:
    """The cniVersion to stamp on an error: the config's when supported, else the latest."""
    if conf is not None:
        version = conf.get("cniVersion")
        if isinstance(version, str) and version in SUPPORTED_VERSIONS:
            return version
    return LATEST_VERSION


@dataclass(frozen=True)
class Invocation:
    """One plugin call: the CNI_* environment, validated for its command, plus stdin.

    `env` and `stdin` are kept whole so delegated plugins see exactly what we saw.
    """

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: tuple[tuple[str, str], ...] = ()
    path: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: bytes = b""

    def arg(self, key: str) -> str | None:
        """A CNI_ARGS value by key (last one wins, as the reference LoadArgs does)."""
        value = None
        for k, v in self.args:
            if k == key:
                value = v
        return value


def parse_cni_args(raw: str) -> tuple[tuple[str, str], ...]:
    """CNI_ARGS `K=V;K2=V2` as pairs; a pair without `=` is an invalid environment."""
    pairs: list[tuple[str, str]] = []
    if not raw:
        return ()
    for item in raw.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CniError(ERR_INVALID_ENV, f"CNI_ARGS: invalid pair {item!r}")
        pairs.append((key, value))
    return tuple(pairs)


def check_known_args(inv: Invocation, known: frozenset[str]) -> None:
    """Refuse CNI_ARGS keys the plugin does not know unless IgnoreUnknown is set (as libcni)."""
    ignore = (inv.arg("IgnoreUnknown") or "").lower() in ("1", "true")
    if ignore:
        return
    unknown = [f"{k}={v}" for k, v in inv.args if k not in known and k != "IgnoreUnknown"]
    if unknown:
        raise CniError(ERR_INVALID_ENV, f"CNI_ARGS: unknown args {json.dumps(unknown)}")


def validate_container_id(container_id: str) -> None:
    """SPEC: non-empty, alphanumeric first, then alphanumerics, `_`, `.` or `-`."""
    if not _NAME_RE.match(container_id):
        raise CniError(ERR_INVALID_ENV, "CNI_CONTAINERID: invalid characters in containerID", container_id)


def validate_ifname(ifname: str) -> None:
    """The kernel's rules for an interface name, so a bad one fails before any change."""
    if not ifname:
        raise CniError(ERR_INVALID_ENV, "CNI_IFNAME: interface name is empty")
    if len(ifname) > _IFNAME_MAX:
        raise CniError(
            ERR_INVALID_ENV,
            "CNI_IFNAME: interface name is too long",
            f"interface name should be less than {_IFNAME_MAX + 1} characters",
        )
    if ifname in (".", ".."):
        raise CniError(ERR_INVALID_ENV, "CNI_IFNAME: interface name is . or ..")
    if any(c in ifname for c in "/:") or any(c.isspace() for c in ifname):
        raise CniError(ERR_INVALID_ENV, "CNI_IFNAME: interface name contains / or : or whitespace characters")


def parse_env(env: Mapping[str, str], stdin: bytes = b"") -> Invocation:
    """Read and validate the CNI_* variables the spec defines for the requested command."""
    command = env.get("CNI_COMMAND", "")
    if not command:
        raise CniError(ERR_INVALID_ENV, "required env variables [CNI_COMMAND] missing")
    if command not in COMMANDS:
        raise CniError(ERR_INVALID_ENV, f"unknown CNI_COMMAND: {command}")
    missing = [name for name in _REQUIRED[command] if not env.get(name)]
    if missing:
        raise CniError(ERR_INVALID_ENV, f"required env variables [{','.join(missing)}] missing")
    inv = Invocation(
        command=command,
        container_id=env.get("CNI_CONTAINERID", ""),
        netns=env.get("CNI_NETNS", ""),
        ifname=env.get("CNI_IFNAME", ""),
        args=parse_cni_args(env.get("CNI_ARGS", "")),
        path=tuple(p for p in env.get("CNI_PATH", "").split(":") if p),
        env=dict(env),
        stdin=stdin,
    )
    if command in ("ADD", "CHECK", "DEL"):
        validate_container_id(inv.container_id)
        validate_ifname(inv.ifname)
    return inv


def decode_config(stdin: bytes) -> dict[str, Any]:
    """The network configuration on stdin; malformed JSON is a decode failure (6)."""
    try:
        conf = json.loads(stdin)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CniError(ERR_DECODE, f"error decoding network config: {exc}") from None
    if not isinstance(conf, dict):
        raise CniError(ERR_DECODE, "error decoding network config: not a JSON object")
    return conf


def check_config(conf: Mapping[str, Any], command: str) -> str:
    """Validate cniVersion and name for `command`; returns the version to answer in."""
    version = conf.get("cniVersion", "")
    if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
        raise CniError(
            ERR_INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            f"config is {json.dumps(version)}, plugin supports {json.dumps(list(SUPPORTED_VERSIONS))}",
        )
    minimum = _MIN_VERSION.get(command)
    if minimum and not version_at_least(version, minimum):
        raise CniError(ERR_INCOMPATIBLE_VERSION, f"config version does not allow {command}")
    name = conf.get("name")
    if not isinstance(name, str) or not name:
        raise CniError(ERR_INVALID_CONFIG, "missing network name")
    if not _NAME_RE.match(name):
        raise CniError(ERR_INVALID_CONFIG, f"invalid network name {name!r}")
    return version


def version_answer(stdin: bytes) -> dict[str, Any]:
    """The VERSION answer: the input's cniVersion echoed, and every version we speak."""
    version = LATEST_VERSION
    try:
        data = json.loads(stdin) if stdin.strip() else {}
    except (ValueError, UnicodeDecodeError):
        data = {}
    if isinstance(data, dict) and isinstance(data.get("cniVersion"), str) and data["cniVersion"]:
        version = data["cniVersion"]
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}


def cfg_bool(conf: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """A boolean config key; any other JSON type is an invalid config naming the key."""
    value = conf.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise CniError(ERR_INVALID_CONFIG, f"{key}: expected a boolean, got {json.dumps(value)}")
    return value


def cfg_str(conf: Mapping[str, Any], key: str, default: str = "") -> str:
    """A string config key, with the key named when the type is wrong."""
    value = conf.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise CniError(ERR_INVALID_CONFIG, f"{key}: expected a string, got {json.dumps(value)}")
    return value


def cfg_int(conf: Mapping[str, Any], key: str, default: int = 0) -> int:
    """An integer config key, with the key named when the type is wrong."""
    value = conf.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise CniError(ERR_INVALID_CONFIG, f"{key}: expected an integer, got {json.dumps(value)}")
    return value
