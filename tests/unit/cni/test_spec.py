"""CNI_* environment, config validation, versions and the error JSON."""

from __future__ import annotations

import json

import pytest

from cni_plugins.spec import (
    SUPPORTED_VERSIONS,
    CniError,
    check_config,
    check_known_args,
    decode_config,
    parse_cni_args,
    parse_env,
    version_answer,
)

ADD = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0"}


def code_of(fn, *args) -> int:
    with pytest.raises(CniError) as err:
        fn(*args)
    return err.value.code


def test_add_env_parses() -> None:
    inv = parse_env({**ADD, "CNI_PATH": "/a:/b", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=p"})
    assert inv.command == "ADD" and inv.path == ("/a", "/b")
    assert inv.arg("K8S_POD_NAME") == "p"


@pytest.mark.parametrize(
    ("env", "text"),
    [
        ({}, "CNI_COMMAND"),
        ({"CNI_COMMAND": "FROB"}, "unknown CNI_COMMAND"),
        ({"CNI_COMMAND": "ADD"}, "CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME"),
        ({**ADD, "CNI_CONTAINERID": "-x"}, "containerID"),
        ({**ADD, "CNI_IFNAME": "a" * 16}, "too long"),
        ({**ADD, "CNI_IFNAME": "a b"}, "whitespace"),
        ({**ADD, "CNI_IFNAME": ".."}, ". or .."),
        ({**ADD, "CNI_ARGS": "novalue"}, "CNI_ARGS"),
        ({"CNI_COMMAND": "GC"}, "CNI_PATH"),
    ],
)
def test_invalid_environment_is_code_4(env: dict[str, str], text: str) -> None:
    with pytest.raises(CniError) as err:
        parse_env(env)
    assert err.value.code == 4
    assert text in err.value.msg + err.value.details


def test_del_needs_no_netns_and_version_needs_nothing() -> None:
    assert parse_env({"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "a", "CNI_IFNAME": "eth0"}).netns == ""
    assert parse_env({"CNI_COMMAND": "VERSION"}).command == "VERSION"
    assert parse_env({"CNI_COMMAND": "STATUS"}).command == "STATUS"


def test_unknown_cni_args_need_ignore_unknown() -> None:
    inv = parse_env({**ADD, "CNI_ARGS": "FOO=1"})
    assert code_of(check_known_args, inv, frozenset({"IP"})) == 4
    check_known_args(parse_env({**ADD, "CNI_ARGS": "FOO=1;IgnoreUnknown=true"}), frozenset())
    check_known_args(parse_env({**ADD, "CNI_ARGS": "IP=10.0.0.2"}), frozenset({"IP"}))


def test_parse_cni_args_pairs() -> None:
    assert parse_cni_args("A=1;B=;C=x=y") == (("A", "1"), ("B", ""), ("C", "x=y"))
    assert parse_cni_args("") == ()


@pytest.mark.parametrize("raw", [b"{", b"", b"[]", b"\xff\xfe", b'"x"'])
def test_undecodable_config_is_code_6(raw: bytes) -> None:
    assert code_of(decode_config, raw) == 6


@pytest.mark.parametrize(
    ("conf", "command", "code"),
    [
        ({"cniVersion": "9.9.9", "name": "n"}, "ADD", 1),
        ({"name": "n"}, "ADD", 1),
        ({"cniVersion": 1, "name": "n"}, "ADD", 1),
        ({"cniVersion": "0.3.1", "name": "n"}, "CHECK", 1),
        ({"cniVersion": "1.0.0", "name": "n"}, "GC", 1),
        ({"cniVersion": "1.0.0", "name": "n"}, "STATUS", 1),
        ({"cniVersion": "1.0.0"}, "ADD", 7),
        ({"cniVersion": "1.0.0", "name": "bad name"}, "ADD", 7),
    ],
)
def test_config_checks(conf: dict, command: str, code: int) -> None:
    assert code_of(check_config, conf, command) == code


def test_incompatible_version_details_list_supported() -> None:
    with pytest.raises(CniError) as err:
        check_config({"cniVersion": "2.0.0", "name": "n"}, "ADD")
    assert err.value.msg == "incompatible CNI versions"
    assert json.dumps(list(SUPPORTED_VERSIONS)) in err.value.details


def test_version_answer_echoes_input() -> None:
    assert version_answer(b'{"cniVersion": "0.4.0"}') == {
        "cniVersion": "0.4.0",
        "supportedVersions": list(SUPPORTED_VERSIONS),
    }
    assert version_answer(b"")["cniVersion"] == "1.1.0"
    assert version_answer(b"garbage")["cniVersion"] == "1.1.0"


def test_error_json_shape() -> None:
    err = CniError(11, "try later", "busy")
    assert err.to_dict("1.1.0") == {"cniVersion": "1.1.0", "code": 11, "msg": "try later", "details": "busy"}
    assert "details" not in CniError(7, "x").to_dict("1.0.0")
    assert CniError.from_dict({"code": 3, "msg": "gone"}).code == 3
    assert CniError.from_dict({"msg": "no code"}).code == 999
