"""The iptables-mode proxier's sync logic against a recording backend double (no root):
what each sync restores, and that a failed sync leaves nothing half-believed."""

from collections.abc import Iterator

import pytest

from services.proxy.iptables_backend import Backend, BackendError
from services.proxy.iptables_mode.proxier import IptablesProxier
from services.proxy.iptables_mode.rules import RuleOptions
from services.proxy.netns import NodeNamespace
from services.proxy.service_port import Endpoint, ServiceInfo, ServicePortName

NAME = ServicePortName("default", "web", "http", "tcp")
INFO = ServiceInfo("10.96.0.10", 80, "tcp")
EP1, EP2 = Endpoint("10.244.1.2", 8080), Endpoint("10.244.1.3", 8080)


class RecordingBackend(Backend):
    def __init__(self) -> None:
        super().__init__("double", "save", "restore", "iptables")
        self.restored: list[str] = []
        self.fail = False

    def save(self, table: str) -> str:
        return f"*{table}\n:KUBE-SVC-OLDSTALECHAIN0000 - [0:0]\nCOMMIT\n" if table == "nat" else ""

    def restore(self, data: str, *, noflush: bool = True) -> None:
        if self.fail:
            raise BackendError("restore failed")
        self.restored.append(data)


@pytest.fixture
def here() -> Iterator[NodeNamespace]:
    node = NodeNamespace("", workers=1)
    yield node
    node.close()


async def test_full_then_partial_then_failure(here: NodeNamespace) -> None:
    backend = RecordingBackend()
    proxier = IptablesProxier(backend, here, RuleOptions(cluster_cidr="10.244.0.0/16"))
    services = {NAME: INFO}

    await proxier.sync(services, {NAME: (EP1,)}, None)
    full = backend.restored[-1]
    assert full.startswith("*filter") and "-X KUBE-SVC-OLDSTALECHAIN0000" in full
    assert "--to-destination 10.244.1.2:8080" in full
    # every jump is missing from the (empty) save: all are inserted
    assert full.count("-I ") == 9

    await proxier.sync(services, {NAME: (EP1, EP2)}, {NAME})
    partial = backend.restored[-1]
    assert "*filter" not in partial and "KUBE-SERVICES" not in partial
    assert "--to-destination 10.244.1.3:8080" in partial

    await proxier.sync(services, {NAME: (EP1, EP2)}, {NAME})
    assert len(backend.restored) == 2  # nothing changed: nothing restored

    backend.fail = True
    with pytest.raises(BackendError):
        await proxier.sync(services, {NAME: (EP2,)}, {NAME})
    backend.fail = False
    await proxier.sync(services, {NAME: (EP2,)}, None)
    healed = backend.restored[-1]
    assert "10.244.1.2:8080" not in healed and "--to-destination 10.244.1.3:8080" in healed
    assert proxier.rule_counts()["filter"] == 3  # KUBE-FORWARD only


async def test_no_endpoints_then_deleted(here: NodeNamespace) -> None:
    backend = RecordingBackend()
    proxier = IptablesProxier(backend, here, RuleOptions())
    await proxier.sync({NAME: INFO}, {}, None)
    assert "default/web:http has no endpoints" in backend.restored[-1]
    await proxier.sync({}, {}, {NAME})
    removal = backend.restored[-1]
    assert removal.startswith("*filter\n-D KUBE-SERVICES") and "*nat" not in removal
    assert proxier.applied == {}


class NftDouble(RecordingBackend):
    """nf_tables: full restores open with a listing and declare the built-in chains."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "list_before_full_restore", True)

    def save(self, table: str) -> str:
        return "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\nCOMMIT\n" if table == "filter" else ""


async def test_nf_tables_full_restore_lists_first_and_keeps_policies(here: NodeNamespace) -> None:
    backend = NftDouble()
    proxier = IptablesProxier(backend, here, RuleOptions())
    await proxier.sync({NAME: INFO}, {NAME: (EP1,)}, None)
    full = backend.restored[-1].splitlines()
    assert full[:5] == ["*filter", "-S", ":FORWARD ACCEPT [0:0]", ":INPUT DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    nat = full[full.index("*nat") :]
    assert nat[1] == "-S" and ":PREROUTING ACCEPT [0:0]" in nat
    await proxier.sync({NAME: INFO}, {NAME: (EP1, EP2)}, {NAME})
    assert "-S" not in backend.restored[-1].splitlines()  # partial restores stay small


def test_backend_choice_and_config() -> None:
    from services.proxy.config import ProxyConfig
    from services.proxy.iptables_backend import LEGACY, NFT, backend_for

    assert backend_for("iptables", "nft") is NFT and backend_for("iptables", "legacy") is LEGACY
    assert backend_for("userspace", "nft") is LEGACY  # python-iptables drives legacy only
    with pytest.raises(ValueError, match="--iptables-backend must be one of nft, legacy, not 'bpf'"):
        ProxyConfig(iptables_backend="bpf")
