"""Bad input gets the spec's error code and message, and leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cni.conftest import Lab, RuntimeFactory, allocated, bridge_conflist
from tests.integration.cni.harness import Attachment, CniRuntime

pytestmark = pytest.mark.integration


def request(data_dir: str, **overrides: Any) -> dict[str, Any]:
    conflist = bridge_conflist(data_dir)
    conf = {**conflist["plugins"][0], "cniVersion": conflist["cniVersion"], "name": conflist["name"]}
    conf.update(overrides)
    return conf


def call(rt: CniRuntime, env: dict[str, str], stdin: bytes) -> tuple[int, dict[str, Any]]:
    proc = rt.exec_raw("pinnace-bridge", env, stdin)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}


def assert_nothing_left(lab: Lab, data_dir: str) -> None:
    assert lab.veths() == []
    assert allocated(data_dir) == []
    assert lab.nat_rules() == []


def add_env(rt: CniRuntime, netns: str, **overrides: str) -> dict[str, str]:
    env = rt.env("ADD", Attachment("bad1", netns))
    env.update(overrides)
    return {k: v for k, v in env.items() if v != "<unset>"}


CASES: list[tuple[str, dict[str, str], Any, int, str]] = [
    ("malformed-json", {}, b'{"cniVersion": "1.0.0", "name": ', 6, "decoding"),
    ("not-an-object", {}, b"[1, 2]", 6, "not a JSON object"),
    ("unknown-version", {}, {"cniVersion": "9.9.9"}, 1, "incompatible CNI versions"),
    ("missing-version", {}, {"cniVersion": None}, 1, "incompatible CNI versions"),
    ("missing-name", {}, {"name": None}, 7, "missing network name"),
    ("missing-command", {"CNI_COMMAND": "<unset>"}, {}, 4, "CNI_COMMAND"),
    ("unknown-command", {"CNI_COMMAND": "FROB"}, {}, 4, "unknown CNI_COMMAND"),
    ("missing-containerid", {"CNI_CONTAINERID": "<unset>"}, {}, 4, "CNI_CONTAINERID"),
    ("missing-netns", {"CNI_NETNS": "<unset>"}, {}, 4, "CNI_NETNS"),
    ("bad-containerid", {"CNI_CONTAINERID": "-x/y"}, {}, 4, "containerID"),
    ("bad-ifname", {"CNI_IFNAME": "eth0/1"}, {}, 4, "CNI_IFNAME"),
    ("long-ifname", {"CNI_IFNAME": "a" * 16}, {}, 4, "too long"),
    ("unknown-cni-args", {"CNI_ARGS": "FOO=bar"}, {}, 4, "CNI_ARGS"),
    ("netns-does-not-exist", {"CNI_NETNS": "/run/netns/pcni-no-such-ns"}, {}, 3, "does not exist"),
    ("netns-not-a-namespace", {"CNI_NETNS": "/etc/hostname"}, {}, 4, "not a network namespace"),
    ("hairpin-and-promisc", {}, {"promiscMode": True}, 7, "hairpin"),
    ("unsupported-vlan", {}, {"vlan": 100}, 2, "vlan"),
    ("bad-subnet", {}, {"ipam": {"type": "pinnace-host-local", "subnet": "10.77.0.1/24"}}, 7, "host bits"),
    ("no-ipam-plugin", {}, {"ipam": {"type": "no-such-ipam", "subnet": "10.77.0.0/24"}}, 7, "no-such-ipam"),
]


@pytest.mark.parametrize("mode", ["daemon", "process"])
@pytest.mark.parametrize(("case", "env_over", "conf_over", "code", "text"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(
    lab: Lab,
    make_runtime: RuntimeFactory,
    data_dir: str,
    mode: str,
    case: str,
    env_over: dict[str, str],
    conf_over: Any,
    code: int,
    text: str,
) -> None:
    rt = make_runtime(mode)
    env = add_env(rt, lab.container(), **env_over)
    if isinstance(conf_over, bytes):
        stdin = conf_over
    else:
        conf = request(data_dir, **conf_over)
        conf = {k: v for k, v in conf.items() if v is not None}
        if "ipam" in conf_over:
            conf["ipam"]["dataDir"] = data_dir
        stdin = json.dumps(conf).encode()
    rc, err = call(rt, env, stdin)
    assert rc != 0
    assert err["code"] == code, err
    assert text.lower() in (err["msg"] + err.get("details", "")).lower(), err
    assert "cniVersion" in err
    assert_nothing_left(lab, data_dir)


@pytest.mark.parametrize("mode", ["daemon", "process"])
def test_exhausted_range(lab: Lab, make_runtime: RuntimeFactory, data_dir: str, mode: str) -> None:
    rt = make_runtime(mode)
    conflist = bridge_conflist(data_dir, subnet="10.77.0.0/30")
    rt.add(conflist, Attachment("first", lab.container()))
    before = (lab.veths(), allocated(data_dir), lab.nat_rules())
    env = rt.env("ADD", Attachment("second", lab.container()))
    conf = request(data_dir)
    conf["ipam"]["subnet"] = "10.77.0.0/30"
    rc, err = call(rt, env, json.dumps(conf).encode())
    assert rc != 0 and err["code"] == 11, err
    assert "no IP addresses available in range set: 10.77.0.1-10.77.0.2" in err["msg"]
    assert (lab.veths(), allocated(data_dir), lab.nat_rules()) == before


@pytest.mark.parametrize("mode", ["daemon", "process"])
def test_bridge_name_that_is_not_a_bridge(
    lab: Lab, make_runtime: RuntimeFactory, data_dir: str, mode: str
) -> None:
    rt = make_runtime(mode)
    lab.in_host("ip", "link", "add", "notabr0", "type", "veth", "peer", "name", "notabr1")
    env = rt.env("ADD", Attachment("nobr", lab.container()))
    rc, err = call(rt, env, json.dumps(request(data_dir, bridge="notabr0")).encode())
    assert rc != 0 and err["code"] == 7, err
    assert "notabr0" in err["msg"] and "not a bridge" in err["msg"]
    assert_nothing_left(lab, data_dir)
    assert not (Path(data_dir) / "pcnitest").exists() or allocated(data_dir) == []
