"""pinnace-kubelet (also `pinnace kubelet`): the node agent (docs/kubelet.md)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from pathlib import Path

from prometheus_client import start_http_server

from services.client.client import Client
from services.client.jointoken import JoinError
from services.kubelet.config import DEFAULT_CRI_SOCKET, DEFAULT_ROOT_DIR, KubeletConfig
from services.kubelet.cri_client import CRI
from services.kubelet.kubelet import Kubelet
from services.kubelet.metrics import REGISTRY
from services.kubelet.node_api import NodeAPI, serve
from services.kubelet.node_api_auth import CallerCheck, NodeAPIConfigError, server_credentials
from services.kubelet.stats import StatsProvider
from services.kubelet.tls_bootstrap import BootstrapError, ensure_credentials
from services.machinery.logs import configure_logging, get_logger

log = get_logger("kubelet")


def _duration(text: str) -> float:
    """10s, 1m, 500ms or a plain number of seconds."""
    text = text.strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


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
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="the node's client configuration (written by the TLS bootstrap); default: plaintext --apiserver",
    )
    parser.add_argument(
        "--bootstrap-kubeconfig",
        type=Path,
        default=None,
        help="kubeconfig with a bootstrap token: requests a client certificate when --kubeconfig is "
        "missing or expired",
    )
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
    parser.add_argument(
        "--tls-cert-file",
        default="",
        help="Node API serving certificate (PEM); default: a self-signed one in <root-dir>/pki",
    )
    parser.add_argument("--tls-private-key-file", default="", help="key of --tls-cert-file (PEM)")
    parser.add_argument(
        "--client-ca-file",
        default="",
        help="CA of Node API client certificates (required unless --node-api-insecure); only "
        "kube-apiserver-kubelet-client and system:masters are served",
    )
    parser.add_argument(
        "--node-api-insecure",
        action="store_true",
        help="serve the Node API in plaintext with no authentication (development only)",
    )
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
        "--node-lease-duration-seconds",
        type=_positive_int,
        default=40,
        help="the node Lease's duration; the kubelet renews it every quarter of this",
    )
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
        tls_cert_file=args.tls_cert_file,
        tls_private_key_file=args.tls_private_key_file,
        client_ca_file=args.client_ca_file,
        node_api_insecure=args.node_api_insecure,
        metrics_listen=args.metrics_listen,
        network_namespace=args.network_namespace,
        cni_conf_dir=args.cni_conf_dir,
        cni_bin_dirs=tuple(Path(p) for p in args.cni_bin_dir.split(":") if p),
        cni_data_dir=args.cni_data_dir,
        cni_bridge=args.cni_bridge,
        cni_plugin=args.cni_plugin,
        node_status_update_frequency=args.node_status_update_frequency,
        node_lease_duration_seconds=args.node_lease_duration_seconds,
        backoff_initial=args.container_restart_backoff,
        relist_period=args.relist_period,
    )


async def run_kubelet(config: KubeletConfig, stop: asyncio.Event, client: Client | None = None) -> None:
    """Run until `stop` is set. `client` is the caller's API client (pinnace server and agent
    pass one with the node's credentials) and stays open; without one the kubelet opens a
    plaintext one to config.apiserver and closes it at the end."""
    # Checked before anything starts, so a node with unusable Node API flags never registers.
    credentials = server_credentials(config) if config.node_api_listen else None
    owned = client is None
    client = client if client is not None else Client.connect(config.apiserver, timeout=15)
    runtime = CRI(config.container_runtime_endpoint, timeout=config.cri_timeout)
    kubelet = Kubelet(config, client, runtime)
    server = None
    port = 0
    if config.node_api_listen:
        stats = StatsProvider(runtime, config.node_name, config.root_dir)
        callers = None if credentials is None else CallerCheck()
        api = NodeAPI(runtime, kubelet.sockets, kubelet.find_pod, stats, callers)
        server, port = await serve(config.node_api_listen, api, credentials)
        log.info("node API serving", listen=config.node_api_listen, port=port, tls=credentials is not None)
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
        if owned:
            await client.close()


async def _api_client(args: argparse.Namespace, config: KubeletConfig) -> Client | None:
    """With --kubeconfig, a client with the node's own certificate (TLS bootstrap first when
    needed); None leaves run_kubelet to its plaintext --apiserver client."""
    if args.kubeconfig is None:
        if args.bootstrap_kubeconfig is not None:
            raise BootstrapError("--bootstrap-kubeconfig needs --kubeconfig, where the kubelet keeps its own")
        return None
    credentials = await ensure_credentials(
        args.kubeconfig, args.bootstrap_kubeconfig, config.node_name, config.root_dir / "pki"
    )
    return credentials.client(timeout=15)


def run(args: argparse.Namespace) -> int:
    configure_logging("kubelet")
    config = config_from(args)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        client = await _api_client(args, config)
        try:
            await run_kubelet(config, stop, client)
        finally:
            if client is not None:
                await client.close()

    try:
        asyncio.run(main())
    except (BootstrapError, JoinError) as exc:
        log.error("cannot get client credentials", error=str(exc))
        print(f"pinnace-kubelet: {exc}", file=sys.stderr)
        return 2
    except NodeAPIConfigError as exc:
        log.error("cannot serve the Node API", error=str(exc))
        print(f"pinnace-kubelet: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace-kubelet", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
