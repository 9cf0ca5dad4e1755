"""The bridge plugin driven by a spec-exact runtime: ADD/CHECK/DEL, chaining, GC, STATUS."""

from __future__ import annotations

import json

import pytest

from tests.integration.cni.conftest import (
    Lab,
    RuntimeFactory,
    allocated,
    bridge_conflist,
    ns_name,
    sh,
    wait_for,
)
from tests.integration.cni.harness import Attachment, PluginError

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("mode", ["daemon", "process"])
def test_add_check_del_cycle(lab: Lab, make_runtime: RuntimeFactory, data_dir: str, mode: str) -> None:
    rt = make_runtime(mode)
    conflist = bridge_conflist(data_dir)
    cont = lab.container()
    att = Attachment("cid1", cont)

    result = rt.add(conflist, att)

    assert result["cniVersion"] == "1.0.0"
    names = [i["name"] for i in result["interfaces"]]
    assert names[0] == "cni0" and names[1].startswith("veth") and names[2] == "eth0"
    assert result["interfaces"][2]["sandbox"] == cont
    assert result["ips"] == [{"interface": 2, "address": "10.77.0.2/24", "gateway": "10.77.0.1"}]
    assert result["routes"] == [{"dst": "0.0.0.0/0"}]
    # observable state
    assert lab.addrs("eth0", ns_name(cont)) == ["10.77.0.2/24"]
    assert lab.addrs("cni0") == ["10.77.0.1/24"]
    host_veth = lab.link(names[1])
    assert host_veth is not None and host_veth["master"] == "cni0"
    assert host_veth["linkinfo"]["info_slave_data"]["hairpin"] is True
    assert "UP" in host_veth["flags"]
    eth0 = lab.link("eth0", ns_name(cont))
    assert eth0 is not None and eth0["address"] == result["interfaces"][2]["mac"] and "UP" in eth0["flags"]
    routes = json.loads(sh("ip", "-n", ns_name(cont), "-j", "route", "show", "default"))
    assert routes[0]["gateway"] == "10.77.0.1" and routes[0]["dev"] == "eth0"
    assert lab.in_host("cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert len(lab.nat_rules()) == 4  # chain declaration, 2 chain rules, POSTROUTING jump
    assert allocated(data_dir) == ["10.77.0.2"]
    assert lab.ping("10.77.0.2") == {"10.77.0.2"}

    rt.check(conflist, att)

    rt.delete(conflist, att)
    assert lab.veths() == []
    assert lab.link("eth0", ns_name(cont)) is None
    assert allocated(data_dir) == []
    assert lab.nat_rules() == []
    # DEL is idempotent: the attachment is already gone
    rt.cache[("pcnitest", "cid1", "eth0")] = result
    rt.delete(conflist, att)


def test_ping_between_containers_and_bridge(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir)
    a, b = lab.container(), lab.container()
    rt.add(conflist, Attachment("a", a))
    rt.add(conflist, Attachment("b", b))
    assert lab.ping("10.77.0.3", ns=ns_name(a)) == {"10.77.0.3"}
    assert lab.ping("10.77.0.2", "10.77.0.3") == {"10.77.0.2", "10.77.0.3"}


def test_del_with_missing_netns_releases_everything(
    lab: Lab, make_runtime: RuntimeFactory, data_dir: str
) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir)
    cont = lab.container()
    att = Attachment("gone", cont)
    rt.add(conflist, att)
    sh("ip", "netns", "del", ns_name(cont))
    rt.delete(conflist, att)
    assert allocated(data_dir) == []
    assert lab.nat_rules() == []
    assert wait_for(lambda: lab.veths() == [])  # the veth dies with the namespace, asynchronously


def test_del_without_netns_is_success(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir)
    rt.delete(conflist, Attachment("never-added", ""))


def test_check_reports_a_missing_address(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir)
    cont = lab.container()
    att = Attachment("chk", cont)
    rt.add(conflist, att)
    sh("ip", "-n", ns_name(cont), "addr", "del", "10.77.0.2/24", "dev", "eth0")
    with pytest.raises(PluginError) as err:
        rt.check(conflist, att)
    assert "10.77.0.2/24" in err.value.msg


def test_check_without_prev_result_is_invalid_config(
    lab: Lab, make_runtime: RuntimeFactory, data_dir: str
) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir)
    att = Attachment("noprev", lab.container())
    rt.add(conflist, att)
    rt.cache.clear()
    with pytest.raises(PluginError) as err:
        rt.check(conflist, att)
    assert err.value.code == 7


def test_chained_conflist_with_loopback_and_reference_tuning(
    lab: Lab, make_runtime: RuntimeFactory, data_dir: str
) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(
        data_dir,
        more_plugins=[
            {"type": "pinnace-loopback"},
            {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.rp_filter": "2"}},
        ],
    )
    cont = lab.container()
    att = Attachment("chain", cont)
    result = rt.add(conflist, att)
    assert result["ips"][0]["address"] == "10.77.0.2/24"  # passed through loopback and tuning
    assert result["interfaces"][2]["name"] == "eth0"
    lo = lab.link("lo", ns_name(cont))
    assert lo is not None and "UP" in lo["flags"]
    rp = sh("ip", "netns", "exec", ns_name(cont), "cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter").strip()
    assert rp == "2"
    rt.check(conflist, att)
    rt.delete(conflist, att)
    assert allocated(data_dir) == []


def test_prev_result_is_kept_after_our_own(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    conflist = {
        "cniVersion": "1.0.0",
        "name": "pcnitest",
        "plugins": [{"type": "pinnace-loopback"}, bridge_conflist(data_dir)["plugins"][0]],
    }
    result = rt.add(conflist, Attachment("prev", lab.container()))
    assert [i["name"] for i in result["interfaces"]] == [
        "cni0",
        result["interfaces"][1]["name"],
        "eth0",
        "lo",
    ]
    assert result["ips"][0]["address"] == "10.77.0.2/24"
    assert result["ips"][1] == {"interface": 3, "address": "127.0.0.1/8"}


def test_reference_bridge_with_our_ipam(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir, bridge_type="bridge")
    att = Attachment("refbr", lab.container())
    result = rt.add(conflist, att)
    assert result["ips"][0]["address"] == "10.77.0.2/24"
    assert allocated(data_dir) == ["10.77.0.2"]
    rt.check(conflist, att)
    rt.delete(conflist, att)
    assert allocated(data_dir) == []


def test_gc_releases_attachments_not_in_the_valid_list(
    lab: Lab, make_runtime: RuntimeFactory, data_dir: str
) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir, version="1.1.0")
    atts = [Attachment(f"gc{i}", lab.container()) for i in range(3)]
    for att in atts:
        rt.add(conflist, att)
    assert len(lab.nat_rules()) == 12
    assert rt.gc(conflist, [atts[0]]) == []
    assert allocated(data_dir) == ["10.77.0.2"]
    rules = lab.nat_rules()
    assert len(rules) == 4 and all('id: \\"gc0\\"' in r or r.startswith(":CNI-") for r in rules)


def test_gc_and_status_need_1_1_0(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    with pytest.raises(PluginError) as err:
        rt.status(bridge_conflist(data_dir, version="1.0.0"))
    assert err.value.code == 1


def test_status_reports_exhausted_range(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir, version="1.1.0", subnet="10.77.0.0/30")
    rt.status(conflist)
    rt.add(conflist, Attachment("only", lab.container()))
    with pytest.raises(PluginError) as err:
        rt.status(conflist)
    assert err.value.code == 50


def test_version_command(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime()
    for plugin in ("pinnace-bridge", "pinnace-host-local", "pinnace-loopback"):
        out = rt.version(plugin, "1.0.0")
        assert out["cniVersion"] == "1.0.0"
        assert {"0.4.0", "1.0.0", "1.1.0"} <= set(out["supportedVersions"])


@pytest.mark.parametrize("version", ["0.4.0", "1.1.0"])
def test_result_follows_the_config_version(
    lab: Lab, make_runtime: RuntimeFactory, data_dir: str, version: str
) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir, version=version)
    att = Attachment("ver", lab.container())
    result = rt.add(conflist, att)
    assert result["cniVersion"] == version
    assert ("version" in result["ips"][0]) is (version == "0.4.0")
    rt.check(conflist, att)
    rt.delete(conflist, att)


def test_mtu_promisc_and_default_gateway(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(
        data_dir,
        extra={
            "mtu": 1400,
            "promiscMode": True,
            "hairpinMode": False,
            "isDefaultGateway": True,
            "ipMasq": False,
        },
        ipam_extra={"routes": []},
    )
    cont = lab.container()
    result = rt.add(conflist, Attachment("mtu", cont))
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.77.0.1"}]
    eth0 = lab.link("eth0", ns_name(cont))
    assert eth0 is not None and eth0["mtu"] == 1400
    bridge = lab.link("cni0")
    assert bridge is not None and bridge["promiscuity"] >= 1
    assert lab.nat_rules() == []


def test_runtime_config_mac_and_ips(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir, extra={"capabilities": {"mac": True, "ips": True}})
    cont = lab.container()
    att = Attachment(
        "caps",
        cont,
        capability_args={"mac": "0a:58:0a:4d:00:09", "ips": ["10.77.0.9/24"], "portMappings": []},
    )
    result = rt.add(conflist, att)
    assert result["ips"][0]["address"] == "10.77.0.9/24"
    eth0 = lab.link("eth0", ns_name(cont))
    assert eth0 is not None and eth0["address"] == "0a:58:0a:4d:00:09"


def test_force_address(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    lab.in_host("ip", "link", "add", "cni0", "type", "bridge")
    lab.in_host("ip", "addr", "add", "10.66.0.1/24", "dev", "cni0")
    with pytest.raises(PluginError) as err:
        rt.add(bridge_conflist(data_dir), Attachment("force1", lab.container()))
    assert err.value.code == 7 and "forceAddress" in err.value.msg
    assert lab.veths() == [] and allocated(data_dir) == [] and lab.nat_rules() == []
    rt.add(bridge_conflist(data_dir, extra={"forceAddress": True}), Attachment("force2", lab.container()))
    assert lab.addrs("cni0") == ["10.77.0.1/24"]


def test_add_twice_is_refused(lab: Lab, make_runtime: RuntimeFactory, data_dir: str) -> None:
    rt = make_runtime()
    conflist = bridge_conflist(data_dir)
    cont = lab.container()
    rt.add(conflist, Attachment("twice", cont))
    with pytest.raises(PluginError):
        rt.add(conflist, Attachment("other", cont))
    assert allocated(data_dir) == ["10.77.0.2"]
    assert len(lab.veths()) == 1
