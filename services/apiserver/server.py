"""The apiserver program: storage, registry, admission, gRPC server (with reflection, health
and keepalive), metrics, and the housekeeping loops (compaction, event TTL)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import structlog
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from pinnace.api.core.v1 import core_pb2
from pinnace.apiserver.v1 import apiserver_pb2, apiserver_pb2_grpc, nodeproxy_pb2, nodeproxy_pb2_grpc
from services.apiserver import bootstrap, errors, master_leases
from services.apiserver.admission import always
from services.apiserver.admission.chain import AdmissionChain, AdmissionPlugin
from services.apiserver.admission.default_toleration_seconds import DefaultTolerationSeconds
from services.apiserver.admission.limit_ranger import LimitRanger
from services.apiserver.admission.namespace_lifecycle import NamespaceLifecycle
from services.apiserver.admission.node_restriction import NodeRestriction
from services.apiserver.admission.priority import Priority
from services.apiserver.admission.resource_quota import ResourceQuotaAdmission
from services.apiserver.admission.security_context_deny import SecurityContextDeny
from services.apiserver.admission.service_account import ServiceAccountAdmission
from services.apiserver.admission.service_allocation import ServiceAllocation
from services.apiserver.allocators import ClusterIPAllocator, NodePortAllocator
from services.apiserver.auth.authn import Authenticator, load_token_file
from services.apiserver.auth.authz import AlwaysAllow, AlwaysDeny, Authorizer, UnionAuthorizer
from services.apiserver.auth.bootstraptoken import BootstrapTokenAuthenticator
from services.apiserver.auth.guard import RequestGuard
from services.apiserver.auth.node import NodeAuthorizer
from services.apiserver.auth.rbac import RBACAuthorizer
from services.apiserver.auth.serviceaccount_tokens import TokenObjectsCheck
from services.apiserver.encryption import load_config as load_encryption
from services.apiserver.kubelet_client import DEFAULT_ADDRESS_TYPES, KubeletClientConfig, KubeletDialer
from services.apiserver.metrics import MeteredStorage
from services.apiserver.nodeproxy import NodeProxyService
from services.apiserver.registry import Registry
from services.apiserver.service import APIService
from services.apiserver.storage.interface import Storage
from services.apiserver.storage.sqlite import SQLiteStorage
from services.apiserver.tokenrequest import TokenIssuer
from services.client import jointoken
from services.machinery import jwt
from services.machinery.jwt import load_public_key
from services.machinery.kinds import REGISTRY
from services.machinery.validation import ServiceRules

log = structlog.get_logger("apiserver")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Kubernetes' order: mutating plugins first, ResourceQuota last so it charges the final object.
DEFAULT_ADMISSION_PLUGINS = (
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "DefaultTolerationSeconds",
    "NodeRestriction",
    "Priority",
    "ResourceQuota",
)
SERVICE_NAME = apiserver_pb2.DESCRIPTOR.services_by_name["API"].full_name
NODE_PROXY_SERVICE_NAME = nodeproxy_pb2.DESCRIPTOR.services_by_name["NodeProxy"].full_name


@dataclass
class Config:
    listen: str = "127.0.0.1:6443"
    storage: str = "sqlite"
    sqlite_path: str = "/var/lib/pinnace/state.db"
    sqlite_synchronous: str = "FULL"
    etcd_servers: list[str] = field(default_factory=list)
    etcd_prefix: str = ""
    # TLS to etcd (Kubernetes' --etcd-cafile, --etcd-certfile, --etcd-keyfile).
    etcd_cafile: str = ""
    etcd_certfile: str = ""
    etcd_keyfile: str = ""
    service_cidr: str = "10.96.0.0/12"
    node_port_range: tuple[int, int] = (30000, 32767)
    advertise_address: str = "127.0.0.1"
    metrics_listen: str = ""
    history_seconds: float = 300.0
    compaction_interval_seconds: float = 60.0
    event_ttl_seconds: float = 3600.0
    # Ordered admission plugins by name (see APIServer.__init__), then extra plugin objects.
    # The library default leaves ServiceAccount out, as Kubernetes' own test servers do: an
    # in-process server runs no controller-manager to create the default accounts its pods
    # would need. The program's default (--admission-plugins) is the full list.
    admission_plugins: list[str] = field(
        default_factory=lambda: [p for p in DEFAULT_ADMISSION_PLUGINS if p != "ServiceAccount"]
    )
    extra_admission: list[AdmissionPlugin] = field(default_factory=list)
    # Security. The library default is a plaintext development server with authentication and
    # authorisation off; the program (cmd/pinnace_cmd/apiserver.py) requires TLS unless asked.
    insecure: bool = True
    tls_cert_file: str = ""
    tls_key_file: str = ""
    client_ca_file: str = ""
    # A second TLS listener without client certificates, for bearer-token clients (pods).
    token_listen: str = ""
    token_auth_file: str = ""
    service_account_key_file: str = ""
    # Signs TokenRequest tokens (serviceaccounts/token); also verifies them when
    # service_account_key_file is empty. Unset: the token subresource is not served.
    service_account_signing_key_file: str = ""
    service_account_issuer: str = jwt.DEFAULT_BOUND_ISSUER
    # Audiences a bound token must name to authenticate here; empty: the issuer.
    api_audiences: list[str] = field(default_factory=list)
    authorization_modes: list[str] = field(default_factory=lambda: ["AlwaysAllow"])
    anonymous_auth: bool = False
    # Kubernetes' --enable-bootstrap-token-auth: bootstrap tokens (kube-system Secrets) authenticate.
    enable_bootstrap_token_auth: bool = False
    # Kubernetes' EncryptionConfiguration file: which resources are encrypted at rest, with which keys.
    encryption_provider_config: str = ""
    reencrypt: bool = False
    # How the NodeProxy service reaches kubelets (services/apiserver/kubelet_client.py).
    kubelet_client_certificate: str = ""
    kubelet_client_key: str = ""
    kubelet_certificate_authority: str = ""
    kubelet_preferred_address_types: list[str] = field(default_factory=lambda: list(DEFAULT_ADDRESS_TYPES))
    kubelet_insecure_plaintext: bool = False


def build_storage(config: Config) -> Storage:
    if config.storage == "sqlite":
        return SQLiteStorage(config.sqlite_path, synchronous=config.sqlite_synchronous)
    if config.storage == "etcd":
        from services.apiserver.storage.etcd import EtcdStorage, EtcdTLS  # noqa: PLC0415 - only when chosen

        if not config.etcd_servers:
            raise ValueError("--etcd-servers is required with --storage=etcd")
        files = (config.etcd_cafile, config.etcd_certfile, config.etcd_keyfile)
        tls = EtcdTLS.from_files(*files) if any(files) else None
        return EtcdStorage(config.etcd_servers, prefix=config.etcd_prefix, tls=tls)
    raise ValueError(f"unknown storage backend {config.storage!r} (sqlite or etcd)")


class APIServer:
    """A running apiserver; `start` returns once it serves, `stop` shuts it down cleanly."""

    def __init__(self, config: Config, storage: Storage | None = None) -> None:
        self.config = config
        self.storage = MeteredStorage(storage or build_storage(config))
        cluster_ips = ClusterIPAllocator(self.storage, config.service_cidr)
        node_ports = NodePortAllocator(self.storage, *config.node_port_range)
        self.cluster_ips = cluster_ips
        transformers = (
            load_encryption(Path(config.encryption_provider_config))
            if config.encryption_provider_config
            else {}
        )
        self.registry = Registry(
            self.storage, AdmissionChain([]), ServiceRules(config.node_port_range), transformers
        )
        available: dict[str, Callable[[], AdmissionPlugin]] = {
            "NamespaceLifecycle": lambda: NamespaceLifecycle(self._namespace),
            "NodeRestriction": lambda: NodeRestriction(self._pod),
            "ServiceAccount": lambda: ServiceAccountAdmission(self._service_account),
            "Priority": lambda: Priority(self.registry),
            "LimitRanger": lambda: LimitRanger(lambda: self.registry),
            "DefaultTolerationSeconds": DefaultTolerationSeconds,
            "ResourceQuota": lambda: ResourceQuotaAdmission(lambda: self.registry),
            "SecurityContextDeny": SecurityContextDeny,
            "AlwaysAdmit": always.AlwaysAdmit,
            "AlwaysDeny": always.AlwaysDeny,
        }
        unknown = [name for name in config.admission_plugins if name not in available]
        if unknown:
            raise ValueError(f"unknown admission plugin(s) {unknown}; known: {sorted(available)}")
        # Address allocation is part of storing a Service, not an optional plugin.
        plugins = [available[name]() for name in config.admission_plugins]
        plugins += [ServiceAllocation(cluster_ips, node_ports), *config.extra_admission]
        self.registry.admission = AdmissionChain(plugins)
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.token_port = 0
        self.api_audiences = tuple(config.api_audiences or [config.service_account_issuer])
        self.token_issuer = (
            TokenIssuer(
                jwt.load_private_key(Path(config.service_account_signing_key_file).read_bytes()),
                config.service_account_issuer,
                self.api_audiences,
            )
            if config.service_account_signing_key_file
            else None
        )
        self._service_account_exists = TokenObjectsCheck(self._cached_object)
        self.guard = RequestGuard(self._authenticator(), self._authorizer())
        self.guard.authenticator.service_account_issuer = config.service_account_issuer
        self.guard.authenticator.api_audiences = self.api_audiences
        self.kubelets = KubeletDialer(
            KubeletClientConfig(
                config.kubelet_client_certificate,
                config.kubelet_client_key,
                config.kubelet_certificate_authority,
                tuple(config.kubelet_preferred_address_types),
                config.kubelet_insecure_plaintext,
            )
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _authenticator(self) -> Authenticator:
        config = self.config
        if config.insecure:
            return Authenticator(enabled=False)
        tokens = load_token_file(Path(config.token_auth_file)) if config.token_auth_file else {}
        key_file = config.service_account_key_file or config.service_account_signing_key_file
        key = load_public_key(Path(key_file)) if key_file else None
        authenticator = Authenticator(
            tokens, key, self._service_account_exists, anonymous=config.anonymous_auth
        )
        if config.enable_bootstrap_token_auth:
            authenticator.bootstrap_tokens = BootstrapTokenAuthenticator(self._cached_secret)
        return authenticator

    def _cached_secret(self, namespace: str, name: str) -> core_pb2.Secret | None:
        info = REGISTRY.by_name("secrets")
        secret = self.registry.caches[info.plural].objects.get(self.registry.key(info, namespace, name))
        assert secret is None or isinstance(secret, core_pb2.Secret)
        return secret

    def _authorizer(self) -> UnionAuthorizer:
        def read(resource: str) -> list[Message]:
            cache = self.registry.caches.get(resource)
            return list(cache.objects.values()) if cache is not None else []

        known: dict[str, Callable[[], Authorizer]] = {
            "AlwaysAllow": AlwaysAllow,
            "AlwaysDeny": AlwaysDeny,
            "RBAC": lambda: RBACAuthorizer(read),
            "Node": lambda: NodeAuthorizer(read),
        }
        unknown = [m for m in self.config.authorization_modes if m not in known]
        if unknown:
            raise ValueError(f"unknown authorization mode(s) {unknown}; known: {sorted(known)}")
        return UnionAuthorizer([known[m]() for m in self.config.authorization_modes])

    def _cached_object(self, plural: str, namespace: str, name: str) -> Message | None:
        info = REGISTRY.by_name(plural)
        return self.registry.caches[info.plural].objects.get(self.registry.key(info, namespace, name))

    async def _stored(self, plural: str, namespace: str, name: str) -> Message | None:
        """From the watch cache, else from storage (an object created a moment ago)."""
        info = REGISTRY.by_name(plural)
        found = await self.registry.get_cached(info, namespace, name)
        if found is None:
            with contextlib.suppress(errors.APIError):
                found = await self.registry.get(info, namespace, name)
        return found

    async def _pod(self, namespace: str, name: str) -> core_pb2.Pod | None:
        pod = await self._stored("pods", namespace, name)
        assert pod is None or isinstance(pod, core_pb2.Pod)
        return pod

    async def _service_account(self, namespace: str, name: str) -> core_pb2.ServiceAccount | None:
        account = await self._stored("serviceaccounts", namespace, name)
        assert account is None or isinstance(account, core_pb2.ServiceAccount)
        return account

    def _server_credentials(self, require_client_cert: bool) -> grpc.ServerCredentials:
        config = self.config
        key, cert = Path(config.tls_key_file).read_bytes(), Path(config.tls_cert_file).read_bytes()
        if require_client_cert:
            return grpc.ssl_server_credentials(
                [(key, cert)],
                root_certificates=Path(config.client_ca_file).read_bytes(),
                require_client_auth=True,
            )
        return grpc.ssl_server_credentials([(key, cert)])

    async def _namespace(self, name: str) -> core_pb2.Namespace | None:
        info = REGISTRY.by_name("namespaces")
        namespace = await self.registry.get_cached(info, "", name)
        if namespace is None:
            with contextlib.suppress(errors.APIError):
                namespace = await self.registry.get(info, "", name)
        assert namespace is None or isinstance(namespace, core_pb2.Namespace)
        return namespace

    async def start(self) -> None:
        await self.registry.start()
        server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.http2.max_pings_without_data", 0),
            ]
        )
        apiserver_pb2_grpc.add_APIServicer_to_server(
            APIService(self.registry, self.guard, self.token_issuer), server
        )
        nodeproxy_pb2_grpc.add_NodeProxyServicer_to_server(
            NodeProxyService(self.registry, self.guard, self.kubelets), server
        )
        health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                NODE_PROXY_SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        if self.config.insecure:
            self.port = server.add_insecure_port(self.config.listen)
        else:
            if not (self.config.tls_cert_file and self.config.tls_key_file):
                raise ValueError(
                    "TLS needs --tls-cert-file and --tls-private-key-file (or --insecure for plaintext)"
                )
            self.port = server.add_secure_port(
                self.config.listen, self._server_credentials(bool(self.config.client_ca_file))
            )
            if self.config.token_listen:
                self.token_port = server.add_secure_port(
                    self.config.token_listen, self._server_credentials(False)
                )
        if self.port == 0:
            raise OSError(f"cannot listen on {self.config.listen}")
        await server.start()
        self.server = server
        await bootstrap.ensure_namespaces(self.registry)
        await bootstrap.ensure_default_policy(self.registry)
        if not self.config.insecure and self.config.client_ca_file:
            await bootstrap.ensure_cluster_info(
                self.registry,
                Path(self.config.client_ca_file).read_bytes(),
                jointoken.host_port(self.config.advertise_address, self.port),
            )
        if self.config.reencrypt:
            for plural in self.registry.transformers:
                count = await self.registry.rewrite_all(REGISTRY.by_name(plural))
                log.info("re-encrypted", resource=plural, objects=count)
        # Pods reach the apiserver through the `kubernetes` Service with their bearer tokens, so
        # with a token listener its Endpoints name that listener.
        await bootstrap.ensure_kubernetes_service(
            self.registry,
            self.cluster_ips.first_ip(),
            self.config.advertise_address,
            self.token_port or self.port,
        )
        for name in ("", SERVICE_NAME, NODE_PROXY_SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.config.metrics_listen:
            host, _, port = self.config.metrics_listen.rpartition(":")
            start_http_server(int(port), addr=host or "0.0.0.0")
        self._tasks = [
            asyncio.create_task(self._compaction_loop()),
            asyncio.create_task(self._event_ttl_loop()),
            asyncio.create_task(self._master_lease_loop()),
        ]
        log.info("apiserver serving", listen=self.config.listen, port=self.port, storage=self.config.storage)

    async def stop(self, grace: float = 1.0) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.server is not None:
            await self.server.stop(grace)
        await self.registry.stop()
        await self.storage.close()

    async def wait(self) -> None:
        assert self.server is not None
        await self.server.wait_for_termination()

    async def _compaction_loop(self) -> None:
        """Keep `history_seconds` of history: compact to the revision seen that long ago."""
        marks: deque[tuple[float, int]] = deque()
        while True:
            await asyncio.sleep(self.config.compaction_interval_seconds)
            try:
                now = time.monotonic()
                marks.append((now, await self.storage.current_revision()))
                target = 0
                while marks and now - marks[0][0] >= self.config.history_seconds:
                    target = marks.popleft()[1]
                if target:
                    await self.storage.compact(target)
                    log.info("compacted", revision=target)
            except Exception as exc:
                log.warning("compaction failed", error=str(exc))

    async def _master_lease_loop(self) -> None:
        """Keep this apiserver in the `kubernetes` Endpoints and drop the dead ones
        (master_leases)."""
        port = self.token_port or self.port
        while True:
            try:
                await master_leases.heartbeat(self.registry, self.config.advertise_address, port)
            except Exception as exc:
                log.warning("apiserver lease renewal failed", error=str(exc))
            await asyncio.sleep(master_leases.RENEW_SECONDS)

    async def _event_ttl_loop(self) -> None:
        """Events expire `event_ttl_seconds` after they were last seen (etcd leases in Kubernetes)."""
        info = REGISTRY.by_name("events")
        while True:
            await asyncio.sleep(min(60.0, self.config.event_ttl_seconds / 2))
            cutoff = time.time() - self.config.event_ttl_seconds
            cache = self.registry.caches[info.plural]
            for event in list(cache.objects.values()):
                assert isinstance(event, core_pb2.Event)
                seen = event.last_timestamp.seconds or event.metadata.creation_timestamp.seconds
                if seen and seen < cutoff:
                    with contextlib.suppress(errors.APIError):
                        await self.registry.delete(info, event.metadata.namespace, event.metadata.name)


async def serve(config: Config) -> None:
    server = APIServer(config)
    await server.start()
    try:
        await server.wait()
    finally:
        await server.stop()
