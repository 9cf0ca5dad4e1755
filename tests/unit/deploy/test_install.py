"""deploy/install.sh into a test directory (--root, --skip-packages): the files it writes, their
modes and contents, and bad input refused with exit 2 and nothing written."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.unit.deploy.helpers import UNITS, files_under, install, read_env_file

TOKEN = "K10" + "ab" * 32 + "::abcdef.0123456789abcdef"
COMMON = {"etc/docker/daemon.json"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_server_writes_unit_flags_docker_settings_and_docs(tmp_path: Path) -> None:
    result = install(tmp_path, "server", "--node-ip", "192.168.56.10", "--tls-san", "master")
    assert result.returncode == 0, result.stderr
    written = {f for f in files_under(tmp_path) if not f.startswith("opt/pinnace/docs/")}
    assert written == COMMON | {"etc/default/pinnace-server", "etc/systemd/system/pinnace-server.service"}
    assert (tmp_path / "opt/pinnace/docs/getting-started.md").is_file()
    unit = tmp_path / "etc/systemd/system/pinnace-server.service"
    assert unit.read_text() == (UNITS / "pinnace-server.service").read_text()
    assert mode(unit) == 0o644
    env_file = tmp_path / "etc/default/pinnace-server"
    assert mode(env_file) == 0o600
    assert read_env_file(env_file) == {"PINNACE_SERVER_ARGS": "--node-ip 192.168.56.10 --tls-san master"}
    assert json.loads((tmp_path / "etc/docker/daemon.json").read_text()) == {
        "bridge": "none",
        "iptables": False,
        "ip6tables": False,
    }
    assert "not starting" in result.stdout  # --root implies --no-start: no systemctl


def test_agent_keeps_its_token_in_a_private_file(tmp_path: Path) -> None:
    result = install(tmp_path, "agent", "--server", "192.168.56.10:6443", "--token", TOKEN)
    assert result.returncode == 0, result.stderr
    token_file = tmp_path / "etc/pinnace/agent-token"
    assert token_file.read_text() == TOKEN + "\n"
    assert mode(token_file) == 0o600
    env_file = tmp_path / "etc/default/pinnace-agent"
    assert TOKEN not in env_file.read_text()
    assert read_env_file(env_file) == {
        "PINNACE_AGENT_ARGS": "--server 192.168.56.10:6443 --token-file /etc/pinnace/agent-token"
    }
    assert (tmp_path / "etc/systemd/system/pinnace-agent.service").is_file()
    assert not (tmp_path / "etc/systemd/system/pinnace-server.service").exists()


def test_agent_token_file_is_copied(tmp_path: Path) -> None:
    source = tmp_path / "node-token"
    source.write_text(TOKEN + "\n")
    root = tmp_path / "root"
    result = install(root, "agent", f"--token-file={source}", "--server=10.0.0.1:6443", "--node-name", "n1")
    assert result.returncode == 0, result.stderr
    assert (root / "etc/pinnace/agent-token").read_text() == TOKEN + "\n"
    assert read_env_file(root / "etc/default/pinnace-agent")["PINNACE_AGENT_ARGS"] == (
        "--server 10.0.0.1:6443 --node-name n1 --token-file /etc/pinnace/agent-token"
    )


def test_existing_docker_settings_are_kept_and_ours_enforced(tmp_path: Path) -> None:
    daemon = tmp_path / "etc/docker/daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text('{"log-driver": "journald", "bridge": "docker0", "iptables": true}\n')
    assert install(tmp_path, "server").returncode == 0
    assert json.loads(daemon.read_text()) == {
        "log-driver": "journald",
        "bridge": "none",
        "iptables": False,
        "ip6tables": False,
    }
    again = install(tmp_path, "server")
    assert again.returncode == 0
    assert "daemon.json" not in again.stdout, "an unchanged daemon.json is not rewritten"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = install(None, "--root", str(tmp_path), "--dry-run", "server", "--node-ip", "10.1.2.3")
    assert result.returncode == 0, result.stderr
    assert 'PINNACE_SERVER_ARGS="--node-ip 10.1.2.3"' in result.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "missing role"),
        (["worker"], "unknown role 'worker'"),
        (["--frobnicate", "server"], "unknown option --frobnicate"),
        (["agent", "--token", TOKEN], "agent needs --server"),
        (["agent", "--server", "10.0.0.1:6443"], "agent needs --token"),
        (["agent", "--server", "10.0.0.1:6443", "--token"], "--token needs a value"),
        (["agent", "--server", "10.0.0.1:6443", "--token", "abcdef.0123456789abcdef"], "not of the form"),
        (["agent", "--server", "1.2.3.4:6443", "--token", TOKEN, "--token-file", "/etc/hosts"], "not both"),
        (["agent", "--server", "1.2.3.4:6443", "--token-file", "/nonexistent/t"], "cannot read --token-file"),
        (["server", "--node-label", "a=b c"], "contains a space"),
        (["server", "--tls-san=$(reboot)"], "contains a space, quote, '$'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = install(root, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "usage: install.sh" in result.stderr
    assert result.stdout == ""
    assert list(root.iterdir()) == []
