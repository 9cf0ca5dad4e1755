"""Cross-check against Debian's containernetworking-plugins (/usr/lib/cni).

For the same config, our bridge and the reference bridge, each run in its own host netns,
must leave equivalent observable state. The masquerade rules are read with the save tool of
each side's backend: python-iptables writes the legacy xtables tables (iptables-legacy-save),
the reference plugin calls `iptables`, which is iptables-nft on Debian 12 (iptables-nft-save).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cni.conftest import Lab, RuntimeFactory, allocated, bridge_conflist, ns_name, sh
from tests.integration.cni.harness import Attachment

pytestmark = pytest.mark.integration


def observe(lab: Lab, host: str, cont: str, result: dict[str, Any], save_tool: str) -> dict[str, Any]:
    """Everything a user could see of an attachment, minus what is random (MACs, veth names)."""
    veth_name = result["interfaces"][1]["name"]
    veth = lab.link(veth_name, host) or {}
    bridge = lab.link("cni0", host) or {}
    eth0 = lab.link("eth0", ns_name(cont)) or {}
    routes = json.loads(sh("ip", "-n", ns_name(cont), "-j", "route", "show", "table", "main"))
    addrs = json.loads(sh("ip", "-n", ns_name(cont), "-j", "addr", "show", "dev", "eth0"))
    bridge_addrs = json.loads(sh("ip", "-n", host, "-j", "addr", "show", "dev", "cni0"))
    nat = sh("nsenter", f"--net=/run/netns/{host}", "--", save_tool, "-t", "nat")
    forward = sh("nsenter", f"--net=/run/netns/{host}", "--", "cat", "/proc/sys/net/ipv4/ip_forward").strip()

    def inet(infos: list[dict[str, Any]]) -> list[tuple[str, int, str, str]]:
        return sorted(
            (a["local"], a["prefixlen"], a.get("broadcast", ""), a["scope"])
            for info in infos
            for a in info["addr_info"]
            if a["family"] == "inet"
        )

    return {
        "result": {
            "ips": result["ips"],
            "routes": result.get("routes"),
            "interfaces": [
                (i["name"] if n != 1 else "veth*", bool(i.get("sandbox")))
                for n, i in enumerate(result["interfaces"])
            ],
        },
        "container": {
            "addresses": inet(addrs),
            "routes": sorted(
                (r["dst"], r.get("gateway", ""), r["dev"], r.get("protocol", ""), r.get("scope", ""))
                for r in routes
            ),
            "up": "UP" in eth0.get("flags", []),
            "mtu": eth0.get("mtu"),
            "kind": eth0.get("linkinfo", {}).get("info_kind"),
        },
        "host": {
            "bridge_addresses": inet(bridge_addrs),
            "bridge_up": "UP" in bridge.get("flags", []),
            "bridge_kind": bridge.get("linkinfo", {}).get("info_kind"),
            "veth_master": veth.get("master"),
            "veth_up": "UP" in veth.get("flags", []),
            "veth_mtu": veth.get("mtu"),
            "hairpin": veth.get("linkinfo", {}).get("info_slave_data", {}).get("hairpin"),
            "veth_count": len([li for li in lab.links(host) if li["ifname"].startswith("veth")]),
            "ip_forward": forward,
        },
        "masquerade": sorted(line for line in nat.splitlines() if "CNI-" in line),
    }


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"hairpinMode": False, "mtu": 1400},
        {"isDefaultGateway": True, "ipMasq": False},
    ],
    ids=["masq-hairpin", "mtu", "default-gateway"],
)
def test_same_observable_state_as_reference(
    lab: Lab, make_runtime: RuntimeFactory, tmp_path: Path, extra: dict[str, Any]
) -> None:
    observed = {}
    for side, bridge_type, ipam_type, save_tool in (
        ("ours", "pinnace-bridge", "pinnace-host-local", "iptables-legacy-save"),
        ("reference", "bridge", "host-local", "iptables-nft-save"),
    ):
        host = lab.netns(f"x{side[0]}")
        data_dir = tmp_path / side
        data_dir.mkdir()
        ipam_extra = {"routes": []} if extra.get("isDefaultGateway") else {}
        conflist = bridge_conflist(
            str(data_dir), bridge_type=bridge_type, ipam_type=ipam_type, extra=extra, ipam_extra=ipam_extra
        )
        rt = make_runtime(host=host)
        cont = lab.container()
        att = Attachment("crosscheck", cont)
        result = rt.add(conflist, att)
        observed[side] = observe(lab, host, cont, result, save_tool)
        rt.check(conflist, att)
        rt.delete(conflist, att)
        assert allocated(str(data_dir)) == []
        after = sh("nsenter", f"--net=/run/netns/{host}", "--", save_tool, "-t", "nat")
        assert "CNI-" not in after
    assert observed["ours"] == observed["reference"]


def test_mixing_ipam_keeps_allocations_consistent(
    lab: Lab, make_runtime: RuntimeFactory, data_dir: str
) -> None:
    """Ours and the reference host-local take turns on one store: round-robin continues, each
    releases and checks the other's allocations."""
    rt = make_runtime()
    cont = lab.container()

    def conf(plugin: str) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": "pcnitest",
            "type": plugin,
            "ipam": {"type": plugin, "subnet": "10.80.0.0/29", "dataDir": data_dir},
        }

    ours, theirs = "pinnace-host-local", "host-local"
    order = [ours, theirs, ours, theirs]
    got = []
    for i, plugin in enumerate(order):
        out = rt.exec_plugin(plugin, rt.env("ADD", Attachment(f"m{i}", cont)), conf(plugin))
        assert out is not None
        got.append(out["ips"][0]["address"])
    assert got == ["10.80.0.2/29", "10.80.0.3/29", "10.80.0.4/29", "10.80.0.5/29"]
    # each side CHECKs and releases the other's allocation
    rt.exec_plugin(theirs, rt.env("CHECK", Attachment("m0", cont)), conf(theirs))
    rt.exec_plugin(ours, rt.env("CHECK", Attachment("m1", cont)), conf(ours))
    rt.exec_plugin(theirs, rt.env("DEL", Attachment("m0", cont)), conf(theirs))
    rt.exec_plugin(ours, rt.env("DEL", Attachment("m1", cont)), conf(ours))
    assert allocated(data_dir) == ["10.80.0.4", "10.80.0.5"]
    # round robin continues past the last reserved address, then wraps to the freed ones
    nxt = [
        rt.exec_plugin(p, rt.env("ADD", Attachment(f"n{i}", cont)), conf(p))["ips"][0]["address"]  # type: ignore[index]
        for i, p in enumerate([theirs, ours, theirs])
    ]
    assert nxt == ["10.80.0.6/29", "10.80.0.2/29", "10.80.0.3/29"]
    stored = (Path(data_dir) / "pcnitest" / "10.80.0.2").read_bytes()
    assert stored == b"n1\r\neth0"
