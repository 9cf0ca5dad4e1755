"""Running deploy/install.sh into a test directory, and reading what it writes."""

from __future__ import annotations

import configparser
import shlex
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
INSTALL = REPO / "deploy" / "install.sh"
UNITS = REPO / "deploy" / "systemd"


def install(root: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    """install.sh with --root ROOT --skip-packages (no apt, pip, images or systemctl)."""
    prefix = ["--root", str(root), "--skip-packages"] if root is not None else []
    return subprocess.run(
        ["bash", str(INSTALL), *prefix, *args], capture_output=True, text=True, timeout=60, check=False
    )


def read_unit(path: Path) -> configparser.ConfigParser:
    """A unit file as sections of key=value (systemd's syntax is ini-like; keys keep their case)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def read_env_file(path: Path) -> dict[str, str]:
    """An EnvironmentFile: VAR=value lines, quotes as systemd (and the shell) read them."""
    values = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.partition("=")
        words = shlex.split(value)
        values[name.strip()] = " ".join(words)
    return values


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
