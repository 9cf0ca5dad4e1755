"""pinnace agent: join this machine to a cluster as a node (like `k3s agent`): the CRI shim,
the kubelet, kube-proxy and host-gw routing in one process. Credentials come from a join
token (`<server data dir>/node-token`: the node pins the cluster CA by its hash, then gets
its own kubelet certificate through a CertificateSigningRequest) or from a client
configuration made for it in advance (`pinnace bootstrap --node NAME` writes
kubelet-NAME.conf). docs/getting-started.md."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from pathlib import Path

from pinnace_cmd.node import NodeSettings, add_node_arguments, run_node
from services.client import jointoken
from services.client.config import ConfigError, Credentials
from services.client.config import load as load_client_config
from services.machinery.logs import configure_logging, get_logger

log = get_logger("agent")
DEFAULT_DATA_DIR = "/var/lib/pinnace/agent"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", required=True, help="the apiserver, HOST:PORT (the server's --https-port)"
    )
    parser.add_argument(
        "--token-port",
        type=int,
        default=6444,
        help="the server's token listener port (its --token-port), used to join",
    )
    parser.add_argument(
        "--token", default="", help="join token K10<CA sha256>::<id>.<secret> (server's node-token)"
    )
    parser.add_argument("--token-file", default="", help="file holding the join token")
    parser.add_argument(
        "--kubeconfig", default="", help="client configuration with this node's identity, instead of a token"
    )
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="credentials and local node state")
    parser.add_argument(
        "--cluster-cidr", default="10.244.0.0/16", help="the cluster's pod CIDR (host-gw, proxy)"
    )
    parser.add_argument("--service-cidr", default="10.96.0.0/12", help="the cluster's service CIDR (host-gw)")
    add_node_arguments(parser)


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.removeprefix("https://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--server {server!r} is not HOST:PORT")
    return host, int(port)


def _join_token(args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token)
    if args.token_file:
        try:
            return Path(args.token_file).read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read --token-file: {exc}") from None
    return ""


async def credentials(args: argparse.Namespace, data_dir: Path) -> tuple[Path, Credentials]:
    """The node's client configuration: --kubeconfig, else the one a previous join wrote,
    else a fresh join with the token."""
    host, port = _host_port(args.server)
    server = f"{host}:{port}"
    joined = data_dir / "kubelet.conf"
    if args.kubeconfig:
        path = Path(args.kubeconfig)
    elif joined.exists():
        path = joined
    else:
        text = _join_token(args)
        if not text:
            raise ValueError("no credentials: pass --token (or --token-file), or --kubeconfig")
        ca_sha256, token = jointoken.parse_join_token(text)
        token_server = f"{host}:{args.token_port}"
        log.info("joining", server=server, token_server=token_server, node=args.node_name)
        ca_pem = await jointoken.fetch_cluster_ca(token_server, ca_sha256)
        path = await jointoken.request_node_credentials(
            token_server, ca_pem, token, args.node_name, data_dir / "pki", kubeconfig_path=joined,
            kubeconfig_server=server,
        )  # fmt: skip
        log.info("joined: kubelet certificate issued", kubeconfig=str(path))
    creds = dataclasses.replace(load_client_config(path), server=server)
    return path, creds


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path, creds = await credentials(args, data_dir)
    ca_file = data_dir / "ca.crt"  # the kubelet's Node API trusts callers signed by the cluster CA
    if not ca_file.exists() or ca_file.read_bytes() != creds.ca_pem:
        ca_file.write_bytes(creds.ca_pem)
    settings = NodeSettings.from_args(args, data_dir, path)
    settings.client_ca_file = str(ca_file)
    async with creds.client(timeout=15) as client:
        await run_node(settings, client, stop)


def run(args: argparse.Namespace) -> int:
    configure_logging("agent")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(args, stop)

    try:
        asyncio.run(main())
    except (ValueError, ConfigError, OSError, RuntimeError, jointoken.JoinError) as exc:
        log.error("agent failed", error=str(exc))
        print(f"pinnace agent: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace-agent", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
