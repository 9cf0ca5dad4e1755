"""pinnace server: a whole control plane, and by default a node, in one process (like `k3s
server`): the apiserver (SQLite, or etcd with --datastore-endpoint), the scheduler, the
controller-manager (node IPAM from --cluster-cidr) and, unless --disable-agent, the local node
(CRI shim, kubelet, kube-proxy, host-gw). The first start creates the CA, certificates and
client configurations in --data-dir and writes the admin's to --write-kubeconfig
(docs/getting-started.md, docs/operations.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from pinnace_cmd import apiserver, controller_manager, scheduler
from pinnace_cmd.node import (
    NodeSettings,
    add_node_arguments,
    first_of,
    parse_flags,
    resolve_node_ip,
    run_node,
)
from services.apiserver.auth.bootstrap_files import BootstrapPlan, bootstrap
from services.apiserver.server import APIServer, Config, build_storage
from services.apiserver.storage.interface import StorageError
from services.client import jointoken
from services.client.config import load as load_client_config
from services.client.errors import AlreadyExistsError
from services.machinery.logs import configure_logging, get_logger
from services.scheduler.config import SchedulerConfig, load_config

log = get_logger("server")
DEFAULT_DATA_DIR = "/var/lib/pinnace/server"
DEFAULT_KUBECONFIG = "/etc/pinnace/admin.conf"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, help="certificates, database, local node state"
    )
    parser.add_argument("--bind-address", default="0.0.0.0", help="address the apiserver listens on")
    parser.add_argument("--https-port", type=int, default=6443, help="apiserver port (mutual TLS)")
    parser.add_argument(
        "--token-port", type=int, default=6444, help="apiserver port for bearer tokens (pods, joining nodes)"
    )
    parser.add_argument(
        "--advertise-address", default="", help="address clients and nodes use (default: --node-ip)"
    )
    parser.add_argument(
        "--tls-san", action="append", default=[], help="extra IP or DNS name of the serving certificate"
    )
    parser.add_argument("--cluster-cidr", default="10.244.0.0/16", help="pod CIDR (one /24 per node)")
    parser.add_argument("--service-cidr", default="10.96.0.0/12", help="ClusterIP range")
    parser.add_argument("--service-node-port-range", default="30000-32767", help="NodePort range (low-high)")
    parser.add_argument(
        "--datastore-endpoint",
        default="",
        help="'' (SQLite in the data dir), sqlite:///PATH, or etcd://HOST:PORT[,HOST:PORT...] "
        "(then several servers may share it; the scheduler and controller-manager elect a leader)",
    )
    parser.add_argument(
        "--write-kubeconfig",
        default=DEFAULT_KUBECONFIG,
        help="where to copy the admin client configuration ('' to skip)",
    )
    parser.add_argument("--disable-agent", action="store_true", help="run no local node")
    for component in ("kube-apiserver", "kube-scheduler", "kube-controller-manager"):
        parser.add_argument(
            f"--{component}-arg",
            action="append",
            default=[],
            help=f"extra {component} flag, e.g. --flag=value",
        )
    add_node_arguments(parser)


@dataclass(frozen=True)
class Datastore:
    storage: str
    sqlite_path: str = ""
    etcd_servers: tuple[str, ...] = ()


def parse_datastore(endpoint: str, data_dir: Path) -> Datastore:
    if not endpoint:
        return Datastore("sqlite", str(data_dir / "db" / "state.db"))
    if endpoint.startswith("sqlite://"):
        path = endpoint.removeprefix("sqlite://")
        if not path.startswith("/"):
            raise ValueError(f"--datastore-endpoint {endpoint!r}: use sqlite:///ABSOLUTE/PATH")
        return Datastore("sqlite", path)
    servers = []
    for item in endpoint.split(","):
        scheme, sep, address = item.strip().rpartition("://")
        if sep and scheme not in ("etcd", "http"):
            raise ValueError(
                f"--datastore-endpoint {endpoint!r}: scheme {scheme!r} is not supported "
                "(sqlite:///PATH, or etcd://HOST:PORT,...; TLS to etcd is not supported)"
            )
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--datastore-endpoint {endpoint!r}: {item!r} is not HOST:PORT")
        servers.append(address)
    return Datastore("etcd", etcd_servers=tuple(servers))


def first_service_ip(service_cidr: str) -> str:
    try:
        network = ipaddress.ip_network(service_cidr, strict=False)
    except ValueError:
        raise ValueError(f"--service-cidr {service_cidr!r} is not a CIDR") from None
    return str(network.network_address + 1)


def _ip_or_name(values: list[str]) -> tuple[list[str], list[str]]:
    ips, names = [], []
    for value in values:
        try:
            ips.append(str(ipaddress.ip_address(value)))
        except ValueError:
            names.append(value)
    return ips, names


# Written by every apiserver at its start (services/apiserver/bootstrap.py): its presence means
# the store already serves a cluster, with a CA of its own.
CLUSTER_INFO_KEY = "/registry/configmaps/kube-public/cluster-info"
SHARED_PKI = ("ca.crt", "ca.key", "sa.key")


async def refuse_foreign_ca(config: Config, pki_dir: Path, timeout: float = 30.0) -> None:
    """A server whose data dir has no CA yet, pointed at an etcd that already holds a cluster,
    would create a second CA and sign its own certificates and tokens with it: its clients and
    nodes could not talk to the other servers, and it would publish its CA as the cluster's.
    Refuse before anything is written, and say which files to copy (docs/operations.md)."""
    if config.storage != "etcd" or (pki_dir / "ca.crt").exists():
        return
    store = build_storage(config)  # as the apiserver connects: prefix, TLS files
    try:
        found = await asyncio.wait_for(store.get(CLUSTER_INFO_KEY), timeout)
    except (TimeoutError, StorageError) as exc:
        raise ValueError(f"cannot reach etcd {','.join(config.etcd_servers)}: {exc}") from None
    finally:
        await store.close()
    if found is not None:
        raise ValueError(
            f"etcd {','.join(config.etcd_servers)} already holds a cluster, and {pki_dir} has no "
            f"CA: copy {', '.join(SHARED_PKI)} from the pki/ directory of a running server's "
            f"--data-dir into {pki_dir} before this server's first start (docs/operations.md, "
            "multi-master)"
        )


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


class Server:
    """The process's parts, started in dependency order and stopped in reverse."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir = Path(args.data_dir).resolve()
        self.datastore = parse_datastore(args.datastore_endpoint, self.data_dir)
        self.leader_elect = "true" if self.datastore.storage == "etcd" else "false"
        self.api: APIServer | None = None

    def credentials(self, node_ip: str) -> None:
        """The first start creates everything; later starts add only what is missing."""
        args = self.args
        advertise = args.advertise_address or node_ip
        ips, names = _ip_or_name(args.tls_san)
        bind = [] if args.bind_address in ("0.0.0.0", "::") else [args.bind_address]
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        bootstrap(
            BootstrapPlan(
                self.data_dir,
                f"{advertise}:{args.https_port}",
                list(
                    dict.fromkeys(
                        ["127.0.0.1", first_service_ip(args.service_cidr), node_ip, advertise, *bind, *ips]
                    )
                ),
                list(dict.fromkeys([socket.gethostname(), *names])),
                [] if args.disable_agent else [args.node_name],
            )
        )
        if args.write_kubeconfig:
            write_private(Path(args.write_kubeconfig), (self.data_dir / "admin.conf").read_text())

    def apiserver_config(self, advertise: str) -> Config:
        args, pki, store = self.args, self.data_dir / "pki", self.datastore
        argv = [
            "--listen", f"{args.bind_address}:{args.https_port}",
            "--token-listen", f"{args.bind_address}:{args.token_port}",
            "--storage", store.storage, "--sqlite-path", store.sqlite_path or str(self.data_dir / "state.db"),
            "--etcd-servers", ",".join(store.etcd_servers),
            "--service-cluster-ip-range", args.service_cidr,
            "--service-node-port-range", args.service_node_port_range,
            "--advertise-address", advertise,
            "--tls-cert-file", str(pki / "apiserver.crt"),
            "--tls-private-key-file", str(pki / "apiserver.key"),
            "--client-ca-file", str(pki / "ca.crt"),
            "--service-account-key-file", str(pki / "sa.key"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            "--anonymous-auth", "--enable-bootstrap-token-auth",
            "--kubelet-client-certificate", str(pki / "apiserver-kubelet-client.crt"),
            "--kubelet-client-key", str(pki / "apiserver-kubelet-client.key"),
            *args.kube_apiserver_arg,
        ]  # fmt: skip
        if store.storage == "sqlite":
            Path(store.sqlite_path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return apiserver.config_from(parse_flags(apiserver.add_arguments, argv))

    async def run(self, stop: asyncio.Event) -> None:
        args = self.args
        node_ip = await resolve_node_ip(args.node_ip)
        advertise = args.advertise_address or node_ip
        if self.datastore.storage == "etcd":  # before anything is written to the data dir
            await refuse_foreign_ca(self.apiserver_config(advertise), self.data_dir / "pki")
        self.credentials(node_ip)
        config = self.apiserver_config(advertise)
        self.api = APIServer(config)
        await self.api.start()
        await self.ensure_join_token()
        parts: dict[str, asyncio.Task[None]] = {}
        node_stop = asyncio.Event()
        node_client = None
        try:
            parts["scheduler"] = asyncio.create_task(self._scheduler(), name="scheduler")
            parts["controller-manager"] = asyncio.create_task(
                self._controller_manager(), name="controller-manager"
            )
            if not args.disable_agent:
                kubeconfig = self.data_dir / f"kubelet-{args.node_name}.conf"
                settings = NodeSettings.from_args(args, self.data_dir / "agent", kubeconfig)
                settings.node_ip = node_ip
                settings.client_ca_file = str(self.data_dir / "pki" / "ca.crt")
                node_client = load_client_config(kubeconfig).client(timeout=15)
                parts["node"] = asyncio.create_task(run_node(settings, node_client, node_stop), name="node")
            log.info(
                "server running",
                apiserver=f"{advertise}:{self.api.port}",
                data_dir=str(self.data_dir),
                storage=self.datastore.storage,
                node=None if args.disable_agent else args.node_name,
            )
            await first_of(parts, stop)
        finally:
            node_stop.set()
            if "node" in parts:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await parts["node"]
            for name in ("controller-manager", "scheduler"):
                if name in parts:
                    parts[name].cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception, SystemExit):
                        await parts[name]
            if node_client is not None:
                await node_client.close()
            await self.api.stop()

    async def ensure_join_token(self) -> None:
        """<data-dir>/node-token: the join token agents use (`pinnace agent --token`), backed by
        a bootstrap-token Secret that never expires. Kept across restarts (the Secret is put
        back if it went missing); delete both and restart to rotate it."""
        assert self.api is not None
        path = self.data_dir / "node-token"
        ca_pem = (self.data_dir / "pki" / "ca.crt").read_bytes()
        if path.exists():
            _, token = jointoken.parse_join_token(path.read_text())
        else:
            token = jointoken.generate()
        secret = jointoken.token_secret(token, ttl_seconds=None, description="pinnace server node-token")
        host = "127.0.0.1" if self.args.bind_address in ("0.0.0.0", "::") else self.args.bind_address
        admin = dataclasses.replace(
            load_client_config(self.data_dir / "admin.conf"), server=f"{host}:{self.api.port}"
        )
        async with admin.client(timeout=15) as client:
            with contextlib.suppress(AlreadyExistsError):
                await client.create(secret)
        if not path.exists():
            write_private(path, jointoken.format_join_token(ca_pem, token) + "\n")

    async def _scheduler(self) -> None:
        argv = [
            "--kubeconfig", str(self.data_dir / "scheduler.conf"), "--leader-elect", self.leader_elect,
            *self.args.kube_scheduler_arg,
        ]  # fmt: skip
        parsed = scheduler.parser()
        parsed.exit_on_error = False
        try:
            options = parsed.parse_args(argv)
        except (argparse.ArgumentError, SystemExit) as exc:
            raise ValueError(f"bad scheduler flags {argv}: {exc}") from None
        config = load_config(options.config) if options.config else SchedulerConfig()
        await scheduler.serve(options, config)

    async def _controller_manager(self) -> None:
        argv = [
            "--kubeconfig", str(self.data_dir / "controller-manager.conf"),
            "--cluster-cidr", self.args.cluster_cidr, "--leader-elect", self.leader_elect,
            "--cluster-signing-cert-file", str(self.data_dir / "pki" / "ca.crt"),
            "--cluster-signing-key-file", str(self.data_dir / "pki" / "ca.key"),
            *self.args.kube_controller_manager_arg,
        ]  # fmt: skip
        await controller_manager.serve(parse_flags(controller_manager.add_arguments, argv))


def run(args: argparse.Namespace) -> int:
    configure_logging("server")
    try:
        server = Server(args)
    except ValueError as exc:
        print(f"pinnace server: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await server.run(stop)

    try:
        asyncio.run(main())
    except (ValueError, OSError, RuntimeError) as exc:
        log.error("server failed", error=str(exc))
        print(f"pinnace server: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace-server", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
