"""host-local without root: config canonicalisation, allocation order, the on-disk store."""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from cni_plugins import registry
from cni_plugins.host_local import HostLocal
from cni_plugins.ipam_allocator import allocate, iterate
from cni_plugins.ipam_config import load_ipam_config, parse_range, parse_rangeset, parse_resolv_conf
from cni_plugins.ipam_store import Store
from cni_plugins.spec import CniError, Invocation, parse_env

IP = ipaddress.ip_address


def inv(cid: str = "c1", ifname: str = "eth0", args: str = "", command: str = "ADD") -> Invocation:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": "/x",
        "CNI_IFNAME": ifname,
        "CNI_PATH": "/x",
    }
    if args:
        env["CNI_ARGS"] = args
    return parse_env(env)


def conf(data_dir: Path | str, **ipam: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "host-local", "dataDir": str(data_dir)}
    if "ranges" not in ipam and "subnet" not in ipam:
        base["subnet"] = "10.1.0.0/29"
    base.update(ipam)
    return {"cniVersion": "1.0.0", "name": "net", "type": "bridge", "ipam": base}


def test_range_defaults_follow_the_reference() -> None:
    r = parse_range({"subnet": "10.1.0.0/24"})
    assert (str(r.gateway), str(r.range_start), str(r.range_end)) == ("10.1.0.1", "10.1.0.1", "10.1.0.254")
    r6 = parse_range({"subnet": "fd00::/120"})
    assert str(r6.range_end) == "fd00::ff"


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        ({"subnet": "10.1.0.0/31"}, "too small"),
        ({"subnet": "10.1.0.1/24"}, "host bits"),
        ({"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.1"}, "RangeStart"),
        ({"subnet": "10.1.0.0/24", "rangeEnd": "10.2.0.1"}, "RangeEnd"),
        ({}, "missing subnet"),
        ({"subnet": "nope"}, "invalid CIDR"),
    ],
)
def test_bad_ranges(obj: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        parse_range(obj)


def test_range_set_rules() -> None:
    with pytest.raises(ValueError, match="mixed"):
        parse_rangeset([{"subnet": "10.1.0.0/24"}, {"subnet": "fd00::/64"}])
    with pytest.raises(ValueError, match="overlap"):
        parse_rangeset([{"subnet": "10.1.0.0/24"}, {"subnet": "10.1.0.0/25"}])


def test_legacy_keys_runtime_ranges_and_requested_ips(tmp_path: Path) -> None:
    c = conf(
        tmp_path, subnet="10.1.0.0/29", ranges=[[{"subnet": "10.2.0.0/24"}]], routes=[{"dst": "0.0.0.0/0"}]
    )
    c["runtimeConfig"] = {"ipRanges": [[{"subnet": "10.3.0.0/24"}]], "ips": ["10.1.0.5/29"]}
    cfg = load_ipam_config(c, inv(args="IP=10.2.0.9"))
    assert [str(rs[0].subnet) for rs in cfg.ranges] == ["10.3.0.0/24", "10.1.0.0/29", "10.2.0.0/24"]
    assert cfg.requested == [IP("10.2.0.9"), IP("10.1.0.5")]
    assert str(cfg.routes[0].dst) == "0.0.0.0/0"
    with pytest.raises(CniError) as err:
        load_ipam_config(conf(tmp_path, subnet="10.1.0.0/29", ranges=[[{"subnet": "10.1.0.0/28"}]]), inv())
    assert err.value.code == 7 and "overlaps" in err.value.msg
    with pytest.raises(CniError) as err:
        load_ipam_config({"name": "n"}, inv())
    assert err.value.code == 7


def test_iteration_order_skips_gateway_and_wraps() -> None:
    rset = parse_rangeset([{"subnet": "10.1.0.0/29"}, {"subnet": "10.1.1.0/30"}])
    order = [str(ip) for _, ip in iterate(rset, None)]
    assert order == ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6", "10.1.1.2"]
    resumed = [str(ip) for _, ip in iterate(rset, IP("10.1.0.5"))]
    assert resumed == ["10.1.0.6", "10.1.1.2", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5"]


def test_round_robin_and_exhaustion(tmp_path: Path) -> None:
    store = Store("net", str(tmp_path))
    rset = parse_rangeset([{"subnet": "10.1.0.0/29", "rangeEnd": "10.1.0.4"}])
    got = [
        str(allocate(store, rset, range_id=0, container_id=f"c{i}", ifname="eth0").address) for i in range(3)
    ]
    assert got == ["10.1.0.2/29", "10.1.0.3/29", "10.1.0.4/29"]
    with pytest.raises(CniError) as err:
        allocate(store, rset, range_id=0, container_id="c9", ifname="eth0")
    assert err.value.code == 11 and "10.1.0.1-10.1.0.4" in err.value.msg
    store.release_by_id("c0", "eth0")
    assert str(allocate(store, rset, range_id=0, container_id="c9", ifname="eth0").address) == "10.1.0.2/29"
    with pytest.raises(CniError, match="duplicate"):
        allocate(store, rset, range_id=0, container_id="c9", ifname="eth0")


def test_store_files_match_the_reference_format(tmp_path: Path) -> None:
    store = Store("net", str(tmp_path))
    assert store.reserve("abc123", "eth0", IP("10.1.0.2"), 0)
    assert not store.reserve("other", "eth0", IP("10.1.0.2"), 0)
    assert (tmp_path / "net" / "10.1.0.2").read_bytes() == b"abc123\r\neth0"
    assert (tmp_path / "net" / "last_reserved_ip.0").read_text() == "10.1.0.2"
    (tmp_path / "net" / "10.1.0.7").write_text("legacyid")  # written by old plugins: id only
    assert store.find_by_id("legacyid", "eth0") == [IP("10.1.0.7")]
    assert store.release_by_id("legacyid", "eth0") == [IP("10.1.0.7")]
    assert store.allocations() == {IP("10.1.0.2"): ("abc123", "eth0")}


def test_add_is_all_or_nothing_across_range_sets(tmp_path: Path) -> None:
    c = conf(tmp_path, ranges=[[{"subnet": "10.1.0.0/29"}], [{"subnet": "10.9.0.0/30"}]])
    hl = HostLocal()
    assert [str(ip.address) for ip in hl.add(inv("a"), c).ips] == ["10.1.0.2/29", "10.9.0.2/30"]
    with pytest.raises(CniError) as err:
        hl.add(inv("b"), c)
    assert err.value.code == 11 and "range 1" in err.value.msg
    assert sorted(str(ip) for ip in Store("net", str(tmp_path)).allocations()) == ["10.1.0.2", "10.9.0.2"]


def test_requested_ip_and_dns(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.53\nsearch a.local b.local\noptions ndots:5\ndomain a.local\n")
    hl = HostLocal()
    result = hl.add(inv("r", args="IP=10.1.0.6"), conf(tmp_path, resolvConf=str(resolv)))
    assert str(result.ips[0].address) == "10.1.0.6/29"
    assert result.dns.nameservers == ["10.0.0.53"] and result.dns.search == ["a.local", "b.local"]
    assert parse_resolv_conf(str(resolv)).options == ["ndots:5"]
    with pytest.raises(CniError, match="gateway"):
        hl.add(inv("g", args="IP=10.1.0.1"), conf(tmp_path))
    with pytest.raises(CniError, match=r"failed to request IPs 10\.7\.0\.1"):
        hl.add(inv("g", args="IP=10.7.0.1"), conf(tmp_path))
    assert [str(ip) for ip in Store("net", str(tmp_path)).allocations()] == ["10.1.0.6"]


def test_del_check_gc_status(tmp_path: Path) -> None:
    hl = HostLocal()
    c = conf(tmp_path, subnet="10.1.0.0/30")
    hl.add(inv("keep"), c)
    hl.check(inv("keep"), c)
    with pytest.raises(CniError, match="Failed to find"):
        hl.check(inv("nope"), c)
    with pytest.raises(CniError) as err:
        hl.status(inv(command="STATUS"), c)
    assert err.value.code == 50
    gc_conf = {**c, "cni.dev/valid-attachments": [{"containerID": "other", "ifname": "eth0"}]}
    hl.gc(inv(command="GC"), gc_conf)
    assert Store("net", str(tmp_path)).allocations() == {}
    hl.status(inv(command="STATUS"), c)
    hl.delete(inv("keep"), c)  # already released: still fine


def _parallel_add(args: tuple[str, int]) -> str:
    data_dir, i = args
    c = conf(data_dir, subnet="10.5.0.0/24")
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"p{i}", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0"}
    out = registry.run("host-local", env, json.dumps(c).encode())
    assert out.code == 0, out.stdout
    return str(json.loads(out.stdout)["ips"][0]["address"])


def test_50_concurrent_processes_get_distinct_addresses(tmp_path: Path) -> None:
    # spawn, not fork: pytest's process has threads (gRPC's, fixtures'), and a child forked
    # while one of them held a lock can spin forever (it did, once, in CI).
    with multiprocessing.get_context("spawn").Pool(16) as pool:
        addresses = pool.map(_parallel_add, [(str(tmp_path), i) for i in range(50)])
    assert len(set(addresses)) == 50
    assert len(Store("net", str(tmp_path)).allocations()) == 50
