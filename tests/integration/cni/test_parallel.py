"""Concurrency: 50 parallel ADDs get 50 distinct, reachable addresses; the store stays consistent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.cni.conftest import Lab, RuntimeFactory, allocated, bridge_conflist
from tests.integration.cni.harness import Attachment, CniRuntime

pytestmark = pytest.mark.integration

PARALLEL = 50


@pytest.mark.parametrize("mode", ["daemon", "process"])
def test_50_parallel_adds(lab: Lab, make_runtime: RuntimeFactory, data_dir: str, mode: str) -> None:
    rt = make_runtime(mode)
    conflist = bridge_conflist(data_dir)
    atts = [Attachment(f"par{i}", lab.container()) for i in range(PARALLEL)]
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        results = list(pool.map(lambda att: rt.add(conflist, att), atts))
    addresses = [r["ips"][0]["address"].split("/")[0] for r in results]
    assert len(set(addresses)) == PARALLEL
    assert sorted(allocated(data_dir)) == sorted(addresses)
    assert len(lab.veths()) == PARALLEL
    assert lab.ping(*addresses) == set(addresses)
    assert len(lab.nat_rules()) == 4 * PARALLEL
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        list(pool.map(lambda att: rt.delete(conflist, att), atts))
    assert allocated(data_dir) == [] and lab.veths() == [] and lab.nat_rules() == []


def test_parallel_mixed_with_reference_host_local(
    make_runtime: RuntimeFactory, data_dir: str, lab: Lab
) -> None:
    """Ours and Debian's host-local allocating concurrently from one store never collide."""
    rt: CniRuntime = make_runtime("daemon")
    cont = lab.container()

    def add(i: int) -> str:
        plugin = "pinnace-host-local" if i % 2 else "host-local"
        conf = {
            "cniVersion": "1.0.0",
            "name": "pcnitest",
            "type": plugin,
            "ipam": {"type": plugin, "subnet": "10.79.0.0/24", "dataDir": data_dir},
        }
        out = rt.exec_plugin(plugin, rt.env("ADD", Attachment(f"mix{i}", cont)), conf)
        assert out is not None
        return str(out["ips"][0]["address"])

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        addresses = list(pool.map(add, range(PARALLEL)))
    assert len(set(addresses)) == PARALLEL
    store = Path(data_dir) / "pcnitest"
    owners = {ip: (store / ip).read_bytes() for ip in allocated(data_dir)}
    assert sorted(owners) == sorted(a.split("/")[0] for a in addresses)
    assert all(content.startswith(b"mix") and content.endswith(b"\r\neth0") for content in owners.values())
