"""`pinctl config` on a client configuration file, the config file lookup order, and shell
completion (the scripts and the hidden `__complete`)."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.apiserver.server import APIServer
from services.cli.app import main_async
from services.cli.context import config_path
from services.client.client import Client
from tests.unit.apiserver.helpers import pod
from tests.unit.cli.conftest import Pinctl, Result


async def _pinctl_with(config: Path, *argv: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = await main_async(["--kubeconfig", str(config), *argv], out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())


async def _build_config(path: Path, server: str) -> None:
    assert (
        await _pinctl_with(
            path, "config", "set-cluster", "lab", "--server", server, "--insecure-plaintext", "true"
        )
    ).out == 'Cluster "lab" set.\n'
    assert (
        await _pinctl_with(path, "config", "set-credentials", "admin", "--token", "s3cret")
    ).out == 'User "admin" set.\n'
    created = await _pinctl_with(path, "config", "set-context", "lab", "--cluster", "lab", "--user", "admin")
    assert created.out == 'Context "lab" created.\n'
    assert (await _pinctl_with(path, "config", "use-context", "lab")).out == 'Switched to context "lab".\n'


async def test_config_round_trip_drives_the_client(tmp_path: Path, server: APIServer, client: Client) -> None:
    path = tmp_path / "config"
    await _build_config(path, f"127.0.0.1:{server.port}")
    assert path.stat().st_mode & 0o777 == 0o600
    assert (await _pinctl_with(path, "config", "current-context")).out == "lab\n"
    modified = await _pinctl_with(path, "config", "set-context", "--current", "--namespace", "kube-system")
    assert modified.out == 'Context "lab" modified.\n'
    contexts = (await _pinctl_with(path, "config", "get-contexts")).out.splitlines()
    assert contexts[0].split() == ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
    assert contexts[1].split() == ["*", "lab", "lab", "admin", "kube-system"]
    await client.create(pod("web", namespace="kube-system"))
    listed = await _pinctl_with(path, "get", "pods", "-o", "name")  # the context's namespace
    assert listed.out == "pod/web\n"


async def test_config_view_redacts(tmp_path: Path) -> None:
    path = tmp_path / "config"
    await _build_config(path, "127.0.0.1:6443")
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"CERTIFICATE")
    await _pinctl_with(
        path, "config", "set-cluster", "lab", "--certificate-authority", str(ca), "--embed-certs"
    )
    shown = yaml.safe_load((await _pinctl_with(path, "config", "view")).out)
    assert shown["users"][0]["user"]["token"] == "REDACTED"
    assert shown["clusters"][0]["cluster"]["certificate-authority-data"] == "DATA+OMITTED"
    raw = yaml.safe_load((await _pinctl_with(path, "config", "view", "--raw")).out)
    assert raw["users"][0]["user"]["token"] == "s3cret"
    assert base64.b64decode(raw["clusters"][0]["cluster"]["certificate-authority-data"]) == b"CERTIFICATE"
    await _pinctl_with(path, "config", "set-context", "other", "--cluster", "elsewhere")
    minified = yaml.safe_load((await _pinctl_with(path, "config", "view", "--minify")).out)
    assert [c["name"] for c in minified["contexts"]] == ["lab"]


async def test_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "config"
    missing = await _pinctl_with(path, "config", "current-context")
    assert missing.code == 1 and "does not exist" in missing.err
    await _build_config(path, "127.0.0.1:6443")
    unknown = await _pinctl_with(path, "config", "use-context", "nope")
    assert (unknown.code, unknown.err) == (1, 'error: no context exists with the name: "nope"\n')
    before = path.read_text()
    both = await _pinctl_with(path, "config", "set-context", "x", "--current")
    assert both.code == 2 and path.read_text() == before
    assert (
        await _pinctl_with(path, "config", "rename-context", "lab", "main")
    ).out == 'Context "lab" renamed to "main".\n'
    assert (await _pinctl_with(path, "config", "current-context")).out == "main\n"
    deleted = await _pinctl_with(path, "config", "delete-context", "main")
    assert deleted.out == f"deleted context main from {path}\n"
    assert "removed your active context" in deleted.err
    no_server = await _pinctl_with(tmp_path / "absent", "get", "pods")
    assert no_server.code == 1 and no_server.err.startswith("error: no configuration has been provided")


def test_config_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINCTL_CONFIG", str(tmp_path / "a"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "b"))
    assert config_path(str(tmp_path / "flag")) == tmp_path / "flag"
    assert config_path("") == tmp_path / "a"
    monkeypatch.delenv("PINCTL_CONFIG")
    assert config_path("") == tmp_path / "b"


async def _complete(pinctl: Pinctl, *words: str) -> list[str]:
    result = await pinctl("__complete", "--", *words)
    assert result.code == 0, result.err
    return result.out.splitlines()


async def test_complete_commands_types_names_and_flags(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("web"))
    await client.create(pod("db"))
    assert {"get", "describe", "apply", "config"} <= set(await _complete(pinctl, ""))
    assert await _complete(pinctl, "ap") == ["api-resources", "apply"]
    assert "__complete" not in await _complete(pinctl, "")
    assert {"pods", "po", "deployments", "all"} <= set(await _complete(pinctl, "get", ""))
    assert await _complete(pinctl, "get", "pods", "") == ["db", "web"]
    assert await _complete(pinctl, "describe", "-n", "default", "pod", "w") == ["web"]
    assert await _complete(pinctl, "get", "pod/") == ["pod/db", "pod/web"]
    assert "--selector" in await _complete(pinctl, "get", "pods", "--")
    assert "kube-system" in await _complete(pinctl, "get", "pods", "-n", "")
    assert await _complete(pinctl, "apply", "-f", "") == [":files"]
    assert await _complete(pinctl, "get", "pods", "-o", "j") == ["json", "jsonpath="]
    assert await _complete(pinctl, "--insecure-plaintext", "get", "pods", "-A", "w") == ["web"]
    assert await _complete(pinctl, "logs", "") == ["db", "web"]
    assert await _complete(pinctl, "get", "nosuchtype", "") == []


async def test_completion_scripts(pinctl: Pinctl) -> None:
    bash = (await pinctl("completion", "bash")).out
    assert "complete -o default -F _pinctl pinctl" in bash
    zsh = (await pinctl("completion", "zsh")).out
    assert zsh.startswith("#compdef pinctl")
    if shutil.which("bash"):
        checked = subprocess.run(["bash", "-n"], input=bash, text=True, capture_output=True, check=False)
        assert checked.returncode == 0, checked.stderr
    assert (await pinctl("completion", "fish")).code == 2
