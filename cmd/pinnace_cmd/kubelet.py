"""pinnace-kubelet (also `pinnace kubelet`): the node agent (docs/kubelet.md)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from pathlib import Path

from prometheus_client import start_http_server

from services.client.client import Client
from services.kubelet.config import DEFAULT_CRI_SOCKET, DEFAULT_ROOT_DIR, KubeletConfig
from services.kubelet.cri_client import CRI
from services.kubelet.kubelet import Kubelet
from services.kubelet.metrics import REGISTRY
from services.kubelet.node_api import NodeAPI, serve
from services.kubelet.stats import StatsProvider
from services.machinery.logs import configure_logging, get_logger

log = get_logger("kubelet")


def _duration(text: str) -> float:
    """10s, 1m, 500ms or a plain number of seconds."""
    text = text.strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text}")


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in (p for p in text.split(",") if p):
        key, _, value = pair.partition("=")
        labels[key] = value
    return labels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node-name", default=socket.gethostname())
    parser.add_argument("--apiserver", default="127.0.0.1:6443", help="host:port of the apiserver")
    parser.add_argument("--container-runtime-endpoint", default=DEFAULT_CRI_SOCKET, help="CRI unix socket")
    parser.add_argument("--root-dir", type=Path, default=DEFAULT_ROOT_DIR)
    parser.add_argument("--pod-manifest-path", type=Path, default=None, help="static pod folder")
    parser.add_argument("--cluster-dns", default="", help="comma-separated DNS server IPs for pods")
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--max-pods", type=int, default=110)
    parser.add_argument("--sync-frequency", type=_duration, default=10.0, help="e.g. 10s")
    parser.add_argument("--register-node", type=_bool, default=True)
    parser.add_argument("--node-ip", default="", help="the node's InternalIP (and pods' hostIP)")
    parser.add_argument("--node-labels", type=_labels, default={}, help="k=v,k2=v2 added at registration")
    parser.add_argument("--node-api-listen", default="127.0.0.1:10250", help="host:port of the Node API")
    parser.add_argument("--metrics-listen", default="", help="host:port for Prometheus /metrics")
    parser.add_argument(
        "--network-namespace",
        default="",
        help="netns path where pod IPs and the runtime's streaming server are reachable (default: own)",
    )
    parser.add_argument("--cni-conf-dir", type=Path, default=None, help="write the CNI conflist here")
    parser.add_argument("--cni-bin-dir", default="/opt/cni/bin:/usr/lib/cni", help="':'-separated")
    parser.add_argument("--cni-data-dir", type=Path, default=Path("/var/lib/cni/networks"))
    parser.add_argument("--cni-bridge", default="cni0")
    parser.add_argument("--cni-plugin", choices=("auto", "pinnace", "reference"), default="auto")
    parser.add_argument("--node-status-update-frequency", type=_duration, default=10.0)
    parser.add_argument(
        "--container-restart-backoff", type=_duration, default=10.0, help="initial restart back-off (tests)"
    )
    parser.add_argument("--relist-period", type=_duration, default=1.0)


def config_from(args: argparse.Namespace) -> KubeletConfig:
    return KubeletConfig(
        node_name=args.node_name,
        apiserver=args.apiserver,
        container_runtime_endpoint=args.container_runtime_endpoint,
        root_dir=args.root_dir,
        pod_manifest_path=args.pod_manifest_path,
        cluster_dns=[s for s in args.cluster_dns.split(",") if s],
        cluster_domain=args.cluster_domain,
        max_pods=args.max_pods,
        sync_frequency=args.sync_frequency,
        register_node=args.register_node,
        node_ip=args.node_ip,
        node_labels=args.node_labels,
        node_api_listen=args.node_api_listen,
        metrics_listen=args.metrics_listen,
        network_namespace=args.network_namespace,
        cni_conf_dir=args.cni_conf_dir,
        cni_bin_dirs=tuple(Path(p) for p in args.cni_bin_dir.split(":") if p),
        cni_data_dir=args.cni_data_dir,
        cni_bridge=args.cni_bridge,
        cni_plugin=args.cni_plugin,
        node_status_update_frequency=args.node_status_update_frequency,
        backoff_initial=args.container_restart_backoff,
        relist_period=args.relist_period,
    )


async def run_kubelet(config: KubeletConfig, stop: asyncio.Event) -> None:
    client = Client.connect(config.apiserver, timeout=15)
    runtime = CRI(config.container_runtime_endpoint, timeout=config.cri_timeout)
    kubelet = Kubelet(config, client, runtime)
    server = None
    port = 0
    if config.node_api_listen:
        stats = StatsProvider(runtime, config.node_name, config.root_dir)
        api = NodeAPI(runtime, kubelet.sockets, kubelet.find_pod, stats)
        server, port = await serve(config.node_api_listen, api)
        log.info("node API serving", listen=config.node_api_listen, port=port)
    if config.metrics_listen:
        host, _, mport = config.metrics_listen.rpartition(":")
        start_http_server(int(mport), host or "127.0.0.1", registry=REGISTRY)
    starting = asyncio.create_task(kubelet.start(node_api_port=port))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            await stop.wait()
    finally:
        starting.cancel()
        stopping.cancel()
        await kubelet.stop()
        if server is not None:
            await server.stop(1)
        await runtime.close()
        await client.close()


def run(args: argparse.Namespace) -> int:
    configure_logging("kubelet")
    config = config_from(args)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_kubelet(config, stop)

    asyncio.run(main())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace-kubelet", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
