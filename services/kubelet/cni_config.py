"""The node's CNI network configuration, written by the kubelet once the Node has a pod
CIDR (the controller-manager's node IPAM, or an operator, sets Node.spec.podCIDR). The CRI
shim reads the conflist from the same directory for every RunPodSandbox and reports
NetworkReady only once one exists, so pods wait until the node has its range.

Our plugins (pinnace-bridge + pinnace-host-local) are used when installed in a CNI bin dir,
Debian's reference bridge/host-local otherwise (`cni_plugin` forces one). The kubelet also
tells the runtime the CIDR with UpdateRuntimeConfig, as Kubernetes does."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

CONFLIST_NAME = "10-pinnace.conflist"
NETWORK_NAME = "pinnace"


def plugin_names(bin_dirs: tuple[Path, ...], choice: str = "auto") -> tuple[str, str, bool]:
    """(bridge type, ipam type, portmap available)."""

    def exists(name: str) -> bool:
        return any((d / name).is_file() for d in bin_dirs)

    ours = exists("pinnace-bridge") and exists("pinnace-host-local")
    use_ours = choice == "pinnace" or (choice == "auto" and ours)
    bridge, ipam = ("pinnace-bridge", "pinnace-host-local") if use_ours else ("bridge", "host-local")
    return bridge, ipam, exists("portmap")


def conflist(
    pod_cidr: str, bridge_name: str, data_dir: Path, plugins: tuple[str, str, bool]
) -> dict[str, Any]:
    network = ipaddress.ip_network(pod_cidr, strict=False)
    default = "0.0.0.0/0" if network.version == 4 else "::/0"
    bridge_type, ipam_type, portmap = plugins
    chain: list[dict[str, Any]] = [
        {
            "type": bridge_type,
            "bridge": bridge_name,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": ipam_type,
                "ranges": [[{"subnet": str(network)}]],
                "routes": [{"dst": default}],
                "dataDir": str(data_dir),
            },
        }
    ]
    if portmap:
        chain.append({"type": "portmap", "capabilities": {"portMappings": True}})
    return {"cniVersion": "1.0.0", "name": NETWORK_NAME, "plugins": chain}


def write_conflist(conf_dir: Path, document: dict[str, Any]) -> bool:
    """Write atomically; True when the file changed."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / CONFLIST_NAME
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    tmp = conf_dir / f".{CONFLIST_NAME}.tmp"
    tmp.write_text(text)
    tmp.replace(path)
    return True
