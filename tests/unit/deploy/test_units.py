"""The systemd units run a program the package installs, with flags that program accepts.

The flags come from where users get them: the environment file install.sh writes, and the
install.sh lines of the Vagrantfile. They are parsed by the real `pinnace` parser, so a
renamed or removed flag fails here rather than in a unit that restarts forever.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from pinnace_cmd.main import build_parser
from tests.unit.deploy.helpers import REPO, UNITS, install, read_env_file, read_unit

ROLES = ("server", "agent")
TOKEN = "K10" + "ab" * 32 + "::abcdef.0123456789abcdef"


def console_scripts() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return dict(project["scripts"])


def accepts(argv: list[str]) -> None:
    """Parse argv with `pinnace`'s own parser; argparse exits (status 2) on a flag it refuses."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`pinnace {' '.join(argv)}` is refused by the parser (exit {exc.code})")


@pytest.mark.parametrize("role", ROLES)
def test_unit_runs_the_installed_program_as_k3s_does(role: str) -> None:
    unit = read_unit(UNITS / f"pinnace-{role}.service")
    service = unit["Service"]
    words = shlex.split(service["ExecStart"])
    program = Path(words[0])
    assert program.parent == Path("/opt/pinnace/venv/bin"), "install.sh puts the virtualenv there"
    assert console_scripts()[program.name] == "pinnace_cmd.main:main"
    assert words[1] == role
    assert words[2:] == [f"$PINNACE_{role.upper()}_ARGS"]
    assert service["EnvironmentFile"] == f"-/etc/default/pinnace-{role}"
    # pinnace never calls sd_notify, so Type=notify would time out; pods must outlive restarts.
    assert service["Type"] == "exec"
    assert service["KillMode"] == "process"
    assert service["Restart"] == "always"
    assert service["Delegate"] == "yes"
    assert service["LimitNOFILE"] == "1048576"
    assert "docker.service" in unit["Unit"]["After"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_no_program_of_the_tree_calls_sd_notify() -> None:
    """Type=exec stays right only while nothing sends READY=1; this fails when someone adds it."""
    for directory in ("services", "cmd", "runtime_shims"):
        for path in (REPO / directory).rglob("*.py"):
            assert "NOTIFY_SOCKET" not in path.read_text(), f"{path} talks sd_notify: use Type=notify"


@pytest.mark.parametrize(
    ("role", "flags"),
    [
        (
            "server",
            ["--node-ip", "192.168.56.10", "--tls-san", "pinnace.example", "--cluster-cidr=10.244.0.0/16"],
        ),
        ("server", ["--disable-agent", "--datastore-endpoint", "etcd://192.168.56.10:2379"]),
        ("agent", ["--server", "192.168.56.10:6443", "--token", TOKEN, "--node-ip", "192.168.56.11"]),
        ("agent", ["--server=192.168.56.10:6443", f"--token={TOKEN}", "--kubelet-arg=--max-pods=50"]),
    ],
)
def test_env_file_flags_are_accepted_by_the_program(tmp_path: Path, role: str, flags: list[str]) -> None:
    result = install(tmp_path, role, *flags)
    assert result.returncode == 0, result.stderr
    env = read_env_file(tmp_path / "etc" / "default" / f"pinnace-{role}")
    argv = [role, *env[f"PINNACE_{role.upper()}_ARGS"].split()]
    accepts(argv)
    args = build_parser().parse_args(argv)
    if role == "agent":
        assert args.token == "", "the token must not be on the command line (ps shows it)"
        assert args.token_file == "/etc/pinnace/agent-token"
        assert args.server == "192.168.56.10:6443"


def vagrant_install_lines() -> list[list[str]]:
    text = (REPO / "Vagrantfile").read_text()
    constants = dict(re.findall(r'^(\w+) = "([^"]*)"', text, flags=re.MULTILINE))
    lines = []
    for line in text.splitlines():
        if "deploy/install.sh" not in line or line.lstrip().startswith("#"):
            continue
        expanded = re.sub(r"#\{(\w+)\}", lambda m: constants.get(m.group(1), "192.168.56.99"), line)
        words = shlex.split(expanded)
        lines.append(words[words.index("/vagrant/deploy/install.sh") + 1 :])
    return lines


def test_vagrantfile_provisions_with_flags_the_programs_accept() -> None:
    lines = vagrant_install_lines()
    assert sorted(words[0] for words in lines) == ["agent", "server"]
    for words in lines:
        argv = list(words)
        if "--token-file" in argv:  # install.sh reads the file; pinnace gets it the same way
            assert argv[argv.index("--token-file") + 1] == "/vagrant/deploy/vagrant/node-token"
        accepts(argv)
    text = (REPO / "Vagrantfile").read_text()
    assert 'config.vm.box = "debian/bookworm64"' in text
    for ip in ("192.168.56.10", "192.168.56.11", "192.168.56.12"):
        assert f'"{ip}"' in text
