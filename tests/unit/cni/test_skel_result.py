"""The driver (dispatch) and version conversion of results."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from cni_plugins.result import Result
from cni_plugins.skel import dispatch
from cni_plugins.spec import CniError, Invocation

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0"}
RESULT_1_1 = {
    "cniVersion": "1.1.0",
    "interfaces": [{"name": "eth0", "mac": "02:00:00:00:00:01", "mtu": 1400, "sandbox": "/run/netns/x"}],
    "ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1", "interface": 0}],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1", "priority": 10}],
    "dns": {"nameservers": ["10.0.0.53"]},
}


class Fake:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.seen: list[str] = []

    def _go(self, name: str) -> None:
        self.seen.append(name)
        if self.fail:
            raise self.fail

    def add(self, inv: Invocation, conf: dict[str, Any]) -> Result:
        self._go("ADD")
        return Result.from_dict(RESULT_1_1)

    def delete(self, inv: Invocation, conf: dict[str, Any]) -> None:
        self._go("DEL")

    def check(self, inv: Invocation, conf: dict[str, Any]) -> None:
        self._go("CHECK")

    def gc(self, inv: Invocation, conf: dict[str, Any]) -> None:
        self._go("GC")

    def status(self, inv: Invocation, conf: dict[str, Any]) -> None:
        self._go("STATUS")


def conf(version: str = "1.0.0") -> bytes:
    return json.dumps({"cniVersion": version, "name": "net", "type": "fake"}).encode()


def test_add_prints_result_in_config_version() -> None:
    out = dispatch(Fake(), ENV, conf("0.4.0"))
    assert out.code == 0
    data = json.loads(out.stdout)
    assert data["cniVersion"] == "0.4.0"
    assert data["ips"][0]["version"] == "4"
    assert "mtu" not in data["interfaces"][0] and "priority" not in data["routes"][0]


def test_1_1_0_keeps_new_fields() -> None:
    data = json.loads(dispatch(Fake(), ENV, conf("1.1.0")).stdout)
    assert data == RESULT_1_1


def test_errors_are_json_on_stdout_with_exit_1() -> None:
    out = dispatch(Fake(CniError(11, "busy")), ENV, conf())
    assert out.code == 1
    assert json.loads(out.stdout) == {"cniVersion": "1.0.0", "code": 11, "msg": "busy"}


def test_unexpected_exception_is_code_999_with_traceback() -> None:
    out = dispatch(Fake(RuntimeError("boom")), ENV, conf())
    assert out.code == 1 and json.loads(out.stdout)["code"] == 999
    assert b"RuntimeError" in out.stderr


def test_bad_input_never_reaches_the_plugin() -> None:
    fake = Fake()
    assert json.loads(dispatch(fake, ENV, b"{").stdout)["code"] == 6
    assert json.loads(dispatch(fake, {**ENV, "CNI_NETNS": ""}, conf()).stdout)["code"] == 4
    assert json.loads(dispatch(fake, ENV, conf("5.0.0")).stdout)["code"] == 1
    assert fake.seen == []


def test_commands_route_and_print_nothing_on_success() -> None:
    fake = Fake()
    for command in ("DEL", "CHECK"):
        out = dispatch(fake, {**ENV, "CNI_COMMAND": command}, conf())
        assert (out.code, out.stdout) == (0, b"")
    for command in ("GC", "STATUS"):
        env = {"CNI_COMMAND": command, "CNI_PATH": "/opt/cni/bin"}
        assert dispatch(fake, env, conf("1.1.0")).code == 0
    assert fake.seen == ["DEL", "CHECK", "GC", "STATUS"]
    version = json.loads(dispatch(fake, {"CNI_COMMAND": "VERSION"}, conf()).stdout)
    assert "1.1.0" in version["supportedVersions"]


def test_result_roundtrip_from_0_4_0() -> None:
    old = {
        "cniVersion": "0.4.0",
        "ips": [{"version": "6", "address": "fd00::2/64", "gateway": "fd00::1"}],
        "routes": [{"dst": "10.1.2.3/8"}],
    }
    result = Result.from_dict(old)
    assert result.ips[0].address == ipaddress.ip_interface("fd00::2/64")
    assert result.routes[0].dst == ipaddress.ip_network("10.0.0.0/8")
    assert result.to_dict("1.0.0") == {
        "cniVersion": "1.0.0",
        "ips": [{"address": "fd00::2/64", "gateway": "fd00::1"}],
        "routes": [{"dst": "10.0.0.0/8"}],
    }


def test_malformed_result_is_decode_error() -> None:
    try:
        Result.from_dict({"ips": [{"address": "not-an-ip"}]})
    except CniError as err:
        assert err.code == 6
    else:
        raise AssertionError("expected a decode error")
