"""A whole node in one asyncio loop: the CRI shim, the kubelet, kube-proxy (iptables mode) and
host-gw routing, as `pinnace agent` runs them and `pinnace server` runs them for its local
node. Each part is configured through its own program's flags (so `--kubelet-arg` and
`--kube-proxy-arg` take exactly what `pinnace kubelet` and `pinnace-proxy` take) and shares
one API client with the node's credentials. Stopping leaves containers, iptables rules and
routes in place, as each part does on its own: workloads keep running through a restart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pinnace_cmd import cri_docker, hostgw, kubelet, proxy
from runtime_shims.docker.server import serve as serve_shim
from services.client.client import Client
from services.hostgw.addresses import node_address
from services.machinery.logs import get_logger
from services.proxy.proxy import KubeProxy

log = get_logger("node")
DEFAULT_CNI_BIN_DIRS = "/opt/cni/bin:/usr/lib/cni"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; keep a margin for "unix://"


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `pinnace server` (its local node) and `pinnace agent`."""
    node = parser.add_argument_group("node")
    node.add_argument("--node-name", default=socket.gethostname(), help="the Node's name (default: hostname)")
    node.add_argument(
        "--node-ip",
        default="",
        help="the Node's InternalIP (default: the address of the default route's device)",
    )
    node.add_argument(
        "--node-label", action="append", default=[], help="k=v label at registration (repeatable)"
    )
    node.add_argument(
        "--docker-host", default=None, help="docker endpoint (default: $DOCKER_HOST or the local socket)"
    )
    node.add_argument(
        "--cni-bin-dir", default=DEFAULT_CNI_BIN_DIRS, help="CNI plugin directories, ':'-separated"
    )
    node.add_argument(
        "--kubelet-arg", action="append", default=[], help="extra `pinnace kubelet` flag, e.g. --max-pods=50"
    )
    node.add_argument(
        "--kube-proxy-arg",
        action="append",
        default=[],
        help="extra `pinnace-proxy` flag, e.g. --sync-period=10",
    )


@dataclass
class NodeSettings:
    node_name: str
    data_dir: Path
    kubeconfig: Path
    cluster_cidr: str
    service_cidr: str
    node_ip: str = ""
    node_labels: list[str] = field(default_factory=list)
    docker_host: str | None = None
    cni_bin_dirs: str = DEFAULT_CNI_BIN_DIRS
    kubelet_args: list[str] = field(default_factory=list)
    proxy_args: list[str] = field(default_factory=list)
    client_ca_file: str = ""  # CA of the Node API's callers (the apiserver's kubelet client)

    @classmethod
    def from_args(cls, args: argparse.Namespace, data_dir: Path, kubeconfig: Path) -> NodeSettings:
        return cls(
            node_name=args.node_name,
            data_dir=data_dir,
            kubeconfig=kubeconfig,
            cluster_cidr=args.cluster_cidr,
            service_cidr=args.service_cidr,
            node_ip=args.node_ip,
            node_labels=list(args.node_label),
            docker_host=args.docker_host,
            cni_bin_dirs=args.cni_bin_dir,
            kubelet_args=list(args.kubelet_arg),
            proxy_args=list(args.kube_proxy_arg),
        )

    @property
    def cri_socket(self) -> Path:
        return self.data_dir / "cri.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.data_dir / "cni" / "net.d"


def parse_flags(add: Callable[[argparse.ArgumentParser], None], argv: list[str]) -> argparse.Namespace:
    """A component's options from its own program's flags (errors name the flags, no exit)."""
    parser = argparse.ArgumentParser(exit_on_error=False)
    add(parser)
    try:
        return parser.parse_args(argv)
    except (argparse.ArgumentError, SystemExit) as exc:
        raise ValueError(f"bad component flags {argv}: {exc}") from None


async def resolve_node_ip(node_ip: str) -> str:
    return node_ip or await node_address()


async def run_node(settings: NodeSettings, client: Client, stop: asyncio.Event) -> None:
    """Run the node until `stop` is set; raises if a part fails. `client` stays the caller's."""
    if len(str(settings.cri_socket)) > MAX_SOCKET_PATH:
        raise ValueError(
            f"data dir {settings.data_dir} is too long for a unix socket path; choose a shorter one"
        )
    node_ip = await resolve_node_ip(settings.node_ip)
    data = settings.data_dir
    shim_argv = [
        "--socket", str(settings.cri_socket), "--cni-conf-dir", str(settings.cni_conf_dir),
        "--cni-bin-dir", settings.cni_bin_dirs, "--cni-cache-dir", str(data / "cni" / "cache"),
        "--node-name", settings.node_name, "--streaming-address", "127.0.0.1:0",
        *(["--docker-host", settings.docker_host] if settings.docker_host else []),
    ]  # fmt: skip
    kubelet_argv = [
        "--node-name", settings.node_name, "--container-runtime-endpoint", str(settings.cri_socket),
        "--root-dir", str(data / "kubelet"), "--node-ip", node_ip,
        "--node-api-listen", f"{node_ip}:10250", "--cni-conf-dir", str(settings.cni_conf_dir),
        "--cni-bin-dir", settings.cni_bin_dirs, "--cni-data-dir", str(data / "cni" / "networks"),
        *(["--node-labels", ",".join(settings.node_labels)] if settings.node_labels else []),
        *(["--client-ca-file", settings.client_ca_file] if settings.client_ca_file else []),
        *settings.kubelet_args,
    ]  # fmt: skip
    proxy_argv = [
        "--proxy-mode", "iptables", "--node-name", settings.node_name, "--node-ip", node_ip,
        "--cluster-cidr", settings.cluster_cidr, *settings.proxy_args,
    ]  # fmt: skip
    hostgw_argv = [
        "--node-name", settings.node_name, "--node-ip", node_ip,
        "--cluster-cidr", settings.cluster_cidr, "--service-cidr", settings.service_cidr,
    ]  # fmt: skip
    shim_config = cri_docker.parse_args(shim_argv)
    kubelet_config = kubelet.config_from(parse_flags(kubelet.add_arguments, kubelet_argv))
    proxy_config = proxy.config_from(parse_flags(proxy.add_arguments, proxy_argv))
    hostgw_config = hostgw.config_from(parse_flags(hostgw.add_arguments, hostgw_argv))
    for directory in (settings.cni_conf_dir, data / "cni" / "cache", data / "kubelet"):
        directory.mkdir(parents=True, exist_ok=True)

    shim_stop, kubelet_stop = asyncio.Event(), asyncio.Event()
    shim = asyncio.create_task(serve_shim(shim_config, shim_stop), name="cri-shim")
    parts: dict[str, asyncio.Task[None]] = {"cri-shim": shim}
    kube_proxy = KubeProxy(proxy_config, client=client)
    try:
        while not settings.cri_socket.exists():
            if shim.done():
                shim.result()
                raise RuntimeError("the CRI shim stopped before serving")
            await asyncio.sleep(0.02)
        parts["hostgw"] = asyncio.create_task(hostgw.serve(client, hostgw_config), name="hostgw")
        parts["kubelet"] = asyncio.create_task(
            kubelet.run_kubelet(kubelet_config, kubelet_stop, client), name="kubelet"
        )
        parts["kube-proxy"] = asyncio.create_task(kube_proxy.run(), name="kube-proxy")
        log.info("node running", node=settings.node_name, node_ip=node_ip, data_dir=str(data))
        await first_of(parts, stop)
    finally:
        for name in ("hostgw", "kube-proxy"):
            if name in parts:
                await _cancel(parts[name])
        kube_proxy.close()
        kubelet_stop.set()
        if "kubelet" in parts:
            await _settle(parts["kubelet"])
        shim_stop.set()
        await _settle(shim)


async def first_of(parts: dict[str, asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Wait for `stop`, or for a part to end (which is a failure: parts run until stopped)."""
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({stopping, *parts.values()}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    for name, task in parts.items():
        if task in done:
            error = task.exception() if not task.cancelled() else None
            log.error("component stopped", component=name, error=repr(error))
            raise RuntimeError(f"{name} stopped: {error!r}") from error


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await _settle(task)


async def _settle(task: Awaitable[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
