"""kube-proxy restarts, mode switches, --cleanup and the backend check, in the lab."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.client.client import Client
from tests.integration.apiserver.process import ApiserverProcess
from tests.integration.proxy.apihelpers import eventually, make_service, names
from tests.integration.proxy.conftest import ProxyProcess, run_cleanup
from tests.integration.proxy.lab import Lab, sh, try_get

pytestmark = pytest.mark.integration

USERSPACE_CHAINS = {
    "KUBE-PORTALS-CONTAINER",
    "KUBE-PORTALS-HOST",
    "KUBE-NODEPORT-CONTAINER",
    "KUBE-NODEPORT-HOST",
    "KUBE-NODEPORT-NON-LOCAL",
}


SAVE = {"legacy": "iptables-legacy-save", "nft": "iptables-nft-save"}


def saved(lab: Lab, tool: str = "iptables-legacy-save") -> str:
    return sh("ip", "netns", "exec", lab.nodes[0].netns, tool)


def saved_both(lab: Lab) -> str:
    """Both backends' rules (each table of each backend is its own section)."""
    return saved(lab, SAVE["legacy"]) + saved(lab, SAVE["nft"])


def kube_chains(text: str) -> set[str]:
    return {line[1:].split()[0] for line in text.splitlines() if line.startswith(":KUBE-")}


def duplicate_rules(text: str) -> list[str]:
    """Rules that appear twice in one table."""
    dups: list[str] = []
    for table in text.split("\n*")[1:]:
        counts = Counter(line for line in table.splitlines() if line.startswith("-A "))
        dups += [line for line, n in counts.items() if n > 1]
    return dups


@pytest.fixture
def node_proxy(lab: Lab, apiserver: ApiserverProcess, tmp_path: Path) -> Iterator[dict[str, ProxyProcess]]:
    """Proxies started by the test (by mode) on node 1; stopped and cleaned up afterwards."""
    started: dict[str, ProxyProcess] = {}
    try:
        yield started
    finally:
        for proxy in started.values():
            proxy.stop()
        run_cleanup(lab.path(lab.nodes[0].netns))


def new_proxy(
    lab: Lab, apiserver: ApiserverProcess, tmp_path: Path, mode: str, backend: str = "nft"
) -> ProxyProcess:
    node = lab.nodes[0]
    return ProxyProcess(apiserver.address, mode, node, lab.path(node.netns), tmp_path, backend=backend)


@pytest.mark.parametrize(
    ("mode", "backend"), [("iptables", "nft"), ("iptables", "legacy"), ("userspace", "legacy")]
)
async def test_restart_keeps_serving_without_duplicate_rules(
    mode: str,
    backend: str,
    lab: Lab,
    api: Client,
    apiserver: ApiserverProcess,
    tmp_path: Path,
    node_proxy: dict[str, ProxyProcess],
) -> None:
    proxy = node_proxy[mode] = new_proxy(lab, apiserver, tmp_path, mode, backend)
    proxy.start()
    backends = lab.nodes[0].pods[:2]
    svc = await make_service(api, backends)
    ip = svc.spec.cluster_ip
    client = lab.nodes[0].pods[2].netns
    await eventually(lab, client, try_get, lambda a: a in names(backends), ip, 80)
    before = saved(lab, SAVE[backend])
    assert "KUBE-SERVICES" in kube_chains(before) or mode == "userspace"
    proxy.kill()
    if mode == "iptables":
        # the rules are in the kernel: the service keeps working with no proxy running
        assert await lab.threads(client).run(try_get, ip, 80) in names(backends)
    proxy.start()
    await eventually(lab, client, try_get, lambda a: a in names(backends), ip, 80)
    await asyncio.sleep(0.3)
    after = saved(lab, SAVE[backend])
    assert duplicate_rules(after) == []
    assert kube_chains(after) == kube_chains(before)


async def test_switching_modes_removes_the_other_modes_rules(
    lab: Lab, api: Client, apiserver: ApiserverProcess, tmp_path: Path, node_proxy: dict[str, ProxyProcess]
) -> None:
    backends = lab.nodes[0].pods[:1]
    svc = await make_service(api, backends)
    ip = svc.spec.cluster_ip
    client = lab.nodes[0].pods[1].netns
    for mode, other in (("iptables", "userspace"), ("userspace", "iptables"), ("iptables", "userspace")):
        proxy = new_proxy(lab, apiserver, tmp_path, mode)
        node_proxy[mode] = proxy
        proxy.start()
        await eventually(lab, client, try_get, lambda a: a == backends[0].name, ip, 80)
        # iptables mode on nf_tables, userspace mode on legacy: each mode's rules in one backend
        nft, legacy = kube_chains(saved(lab, SAVE["nft"])), kube_chains(saved(lab, SAVE["legacy"]))
        if mode == "iptables":
            assert legacy == set() and nft & USERSPACE_CHAINS == set(), (legacy, nft)
            assert "KUBE-SERVICES" in nft
        else:
            assert legacy == USERSPACE_CHAINS and nft == set(), (legacy, nft)
        assert duplicate_rules(saved_both(lab)) == []
        proxy.stop()
        del node_proxy[mode]
        del other


async def test_cleanup_removes_everything(
    lab: Lab, api: Client, apiserver: ApiserverProcess, tmp_path: Path, node_proxy: dict[str, ProxyProcess]
) -> None:
    backends = lab.nodes[0].pods[:1]
    svc = await make_service(api, backends, svc_type="NodePort")
    client = lab.nodes[0].pods[1].netns
    for mode in ("userspace", "iptables"):
        proxy = node_proxy[mode] = new_proxy(lab, apiserver, tmp_path, mode)
        proxy.start()
        await eventually(lab, client, try_get, lambda a: a == backends[0].name, svc.spec.cluster_ip, 80)
        proxy.stop()
    assert kube_chains(saved_both(lab)) != set()
    run_cleanup(lab.path(lab.nodes[0].netns))
    text = saved_both(lab)
    assert kube_chains(text) == set(), text
    assert "KUBE-" not in text, text


async def test_refuses_to_start_beside_rules_in_the_other_backend(
    lab: Lab, apiserver: ApiserverProcess, tmp_path: Path, node_proxy: dict[str, ProxyProcess]
) -> None:
    """iptables mode on nf_tables (the default) next to iptables-mode chains in legacy."""
    netns = lab.nodes[0].netns
    made = subprocess.run(
        ["ip", "netns", "exec", netns, "iptables-legacy", "-t", "nat", "-N", "KUBE-SERVICES"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    proxy = node_proxy["iptables"] = new_proxy(lab, apiserver, tmp_path, "iptables")
    with pytest.raises(RuntimeError, match="exited"):
        proxy.start(timeout=15)
    assert "legacy backend already holds kube-proxy chains (nat: KUBE-SERVICES)" in proxy.log_path.read_text()
    assert kube_chains(saved(lab, SAVE["nft"])) == set()  # it touched nothing
    run_cleanup(lab.path(netns))
    assert kube_chains(saved_both(lab)) == set()
    proxy.start()
