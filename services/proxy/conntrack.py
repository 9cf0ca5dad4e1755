"""Clearing UDP conntrack entries that would keep sending a flow to a gone endpoint (or to a
REJECT): UDP has no connection end, so without this a client keeps its stale mapping for as
long as it keeps sending. TCP needs nothing: a dead endpoint resets the connection."""

from __future__ import annotations

import shutil
import subprocess


def available() -> bool:
    return shutil.which("conntrack") is not None


def delete_service_flows(service_ip: str, endpoint_ip: str = "") -> None:
    """Must run in the node's namespace. Exit code 1 ("0 flow entries deleted") is normal."""
    if not available():
        return
    args = ["conntrack", "-D", "-p", "udp", "--orig-dst", service_ip]
    if endpoint_ip:
        args += ["--dst-nat", endpoint_ip]
    subprocess.run(args, capture_output=True, check=False)


def delete_port_flows(port: int) -> None:
    """Flows to a node port (any destination address)."""
    if not available():
        return
    subprocess.run(["conntrack", "-D", "-p", "udp", "--dport", str(port)], capture_output=True, check=False)
