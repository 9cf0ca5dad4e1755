"""Bridge config, NAT chain naming, the thin client's wire format, install and delegation lookup."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cni_plugins import thin
from cni_plugins.bridge import load_conf
from cni_plugins.install import install
from cni_plugins.invoke import find_plugin, own_plugin
from cni_plugins.ipmasq import chain_name, comment, parse_comment
from cni_plugins.spec import CniError, parse_env

INV = parse_env({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0"})


def bridge(**keys: Any) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": "net", "type": "pinnace-bridge", "ipam": {}, **keys}


def test_chain_name_matches_the_reference_plugin() -> None:
    # observed from Debian's bridge plugin for network "expnet", container "abc123"
    assert chain_name("expnet", "abc123") == "CNI-b7126cfc870b5e09e898ada8"
    assert comment("expnet", "abc123") == 'name: "expnet" id: "abc123"'
    assert parse_comment(comment("n", "c")) == ("n", "c")
    assert parse_comment("something else") is None


def test_bridge_defaults_and_implications() -> None:
    c = load_conf(bridge(isDefaultGateway=True), INV)
    assert c.bridge == "cni0" and c.is_gateway and c.ipam_type == ""


@pytest.mark.parametrize(
    ("keys", "code"),
    [
        ({"hairpinMode": True, "promiscMode": True}, 7),
        ({"vlan": 10}, 2),
        ({"ipMasqBackend": "nftables"}, 2),
        ({"mtu": "1500"}, 7),
        ({"isGateway": "yes"}, 7),
        ({"bridge": "a-name-that-is-too-long"}, 7),
        ({"runtimeConfig": {"mac": "zz"}}, 7),
    ],
)
def test_bad_bridge_config(keys: dict[str, Any], code: int) -> None:
    with pytest.raises(CniError) as err:
        load_conf(bridge(**keys), INV)
    assert err.value.code == code


def test_mac_sources_in_reference_precedence() -> None:
    inv = parse_env({**INV.env, "CNI_ARGS": "MAC=02:00:00:00:00:01"})
    assert load_conf(bridge(), inv).mac == "02:00:00:00:00:01"
    keys = {"args": {"cni": {"mac": "02:00:00:00:00:02"}}, "runtimeConfig": {"mac": "02:00:00:00:00:03"}}
    assert load_conf(bridge(**keys), inv).mac == "02:00:00:00:00:03"


def test_wire_format_roundtrip() -> None:
    env = {b"CNI_COMMAND": b"ADD", b"EMPTY": b"", b"UTF": "é".encode()}
    name, decoded, stdin = thin.decode_request(thin.encode_request("bridge", env, b'{"a":\x00 1}'))
    assert name == "bridge" and decoded == {"CNI_COMMAND": "ADD", "EMPTY": "", "UTF": "é"}
    assert stdin == b'{"a":\x00 1}'
    assert thin.decode_response(thin.encode_response(1, b"out", b"err")) == (1, b"out", b"err")
    with pytest.raises(ValueError):
        thin.decode_request(b"garbage")
    with pytest.raises(ValueError):
        thin.decode_response(b"\0\0\0\0\0\0\0\x09short")


def test_thin_client_falls_back_without_a_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(thin, "_in_process", lambda name, full="": calls.append((name, full)) or 0)
    monkeypatch.setitem(thin.posix.environ, thin.SOCKET_ENV, b"/nonexistent/pcni.sock")
    assert thin.main("loopback") == 0
    assert calls == [("loopback", "")]


def test_install_and_delegation_lookup(tmp_path: Path) -> None:
    paths = install(tmp_path, socket_path="", thin="/usr/bin/env python3")
    assert sorted(p.name for p in paths) == ["pinnace-bridge", "pinnace-host-local", "pinnace-loopback"]
    exe = find_plugin("pinnace-host-local", (str(tmp_path / "missing"), str(tmp_path)))
    assert os.access(exe, os.X_OK) and own_plugin(exe) == "host-local"
    foreign = tmp_path / "other"
    foreign.write_text("#!/bin/sh\n")
    foreign.chmod(0o755)
    assert own_plugin(foreign) is None
    with pytest.raises(CniError) as err:
        find_plugin("nope", (str(tmp_path),))
    assert err.value.code == 7
    with pytest.raises(CniError) as err:
        find_plugin("pinnace-bridge", ())
    assert err.value.code == 4
