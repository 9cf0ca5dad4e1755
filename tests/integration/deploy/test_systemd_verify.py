"""`systemd-analyze verify` on the units install.sh writes.

verify checks every directive's syntax and value and that ExecStart's program exists and is
executable; it needs no systemd as PID 1 (this machine has none). The units name
/opt/pinnace/venv/bin/pinnace, which only a real install creates, so the copies checked here
point ExecStart at this checkout's virtualenv (tests/unit/deploy/test_units.py checks the real
path against the package's console scripts). verify exits 0 even on a directive it ignores,
so its warnings on stderr count as failures; the last test shows that they do.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import missing
from tests.unit.deploy.helpers import install

VENV_PINNACE = Path(sys.executable).parent / "pinnace"


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        missing("systemd-analyze is not installed (Debian package systemd)")
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("role", ["server", "agent"])
def test_installed_units_verify_clean(tmp_path: Path, role: str) -> None:
    extra = ["--server", "10.0.0.1:6443", "--token", "K10" + "ab" * 32 + "::abcdef.0123456789abcdef"]
    root = tmp_path / "root"
    assert install(root, role, *(extra if role == "agent" else [])).returncode == 0
    text = (root / "etc/systemd/system" / f"pinnace-{role}.service").read_text()
    assert "/opt/pinnace/venv/bin/pinnace " in text
    unit = tmp_path / f"pinnace-{role}.service"
    unit.write_text(text.replace("/opt/pinnace/venv/bin/pinnace ", f"{VENV_PINNACE} "))
    result = verify(unit)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_verify_reports_a_broken_unit(tmp_path: Path) -> None:
    unit = tmp_path / "broken.service"
    unit.write_text(f"[Service]\nType=exec\nExecStart={VENV_PINNACE} server\nKillMode=sometimes\n")
    result = verify(unit)
    assert "kill mode" in result.stderr.lower()
