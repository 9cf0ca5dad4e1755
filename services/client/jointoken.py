"""Joining a cluster with a token, as kubeadm and k3s do it.

A bootstrap token `<id>.<secret>` is stored as Kubernetes' Secret kube-system/bootstrap-token-<id>;
the apiserver authenticates it as `system:bootstrap:<id>` in system:bootstrappers, a group that
may only create CertificateSigningRequests. A node's join token adds the hash of the cluster CA
(`K10<sha256 of the CA's DER>::<id>.<secret>`, k3s' form), so the node can learn the CA over an
untrusted network: it reads the public ConfigMap kube-public/cluster-info without verifying the
server, accepts the CA only if its hash matches, and from then on speaks verified TLS. Only then
does it send the token, asking for a client certificate (the kubelet's TLS bootstrap).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import re
import secrets
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pinnace.api.certificates.v1 import certificates_pb2
from pinnace.api.core.v1 import core_pb2
from services.client import errors
from services.client.client import Client, channel_options
from services.client.config import Credentials, render

TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token"
TOKEN_SECRET_PREFIX = "bootstrap-token-"
TOKEN_NAMESPACE = "kube-system"
DEFAULT_GROUPS = ("system:bootstrappers:pinnace:default-node-token",)
BOOTSTRAPPERS_GROUP = "system:bootstrappers"
CLUSTER_INFO_NAMESPACE = "kube-public"
CLUSTER_INFO_NAME = "cluster-info"
KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_CLIENT_USAGES = ("digital signature", "client auth")
JOIN_TOKEN_PREFIX = "K10"

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
_ID_RE = re.compile(r"^[a-z0-9]{6}$")
_SECRET_RE = re.compile(r"^[a-z0-9]{16}$")
_GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


class JoinError(RuntimeError):
    """Joining failed: the CA did not match the pin, the request was denied, or timed out."""


@dataclass(frozen=True)
class BootstrapToken:
    token_id: str
    secret: str

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.token_id):
            raise ValueError(f"bootstrap token id {self.token_id!r} is not of the form [a-z0-9]{{6}}")
        if not _SECRET_RE.match(self.secret):
            raise ValueError("bootstrap token secret is not of the form [a-z0-9]{16}")

    def __str__(self) -> str:
        return f"{self.token_id}.{self.secret}"

    def __repr__(self) -> str:
        return f"BootstrapToken(token_id={self.token_id!r}, secret=<redacted>)"

    @property
    def secret_name(self) -> str:
        return TOKEN_SECRET_PREFIX + self.token_id


def generate() -> BootstrapToken:
    """A new random token (about 113 bits of secret)."""
    return BootstrapToken(_random(6), _random(16))


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def parse(text: str) -> BootstrapToken:
    match = _TOKEN_RE.match(text.strip())
    if match is None:
        # The text may be a real secret with a typo: never echo it.
        raise ValueError('the bootstrap token is not of the form "[a-z0-9]{6}.[a-z0-9]{16}"')
    return BootstrapToken(match.group(1), match.group(2))


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_secret(
    token: BootstrapToken,
    *,
    ttl_seconds: int | None,
    groups: Iterable[str] = DEFAULT_GROUPS,
    description: str = "",
    now: dt.datetime | None = None,
) -> core_pb2.Secret:
    """Kubernetes' bootstrap-token Secret; ttl_seconds None (or 0) means it never expires."""
    extra = list(groups)
    for group in extra:
        if not _GROUP_RE.match(group):
            raise ValueError(f"group {group!r} must match {_GROUP_RE.pattern}")
    if ttl_seconds is not None and ttl_seconds < 0:
        raise ValueError("ttl_seconds must not be negative")
    secret = core_pb2.Secret(type=TOKEN_SECRET_TYPE)
    secret.metadata.name, secret.metadata.namespace = token.secret_name, TOKEN_NAMESPACE
    data = {
        "token-id": token.token_id,
        "token-secret": token.secret,
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
    }
    if ttl_seconds:
        data["expiration"] = rfc3339((now or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=ttl_seconds))
    if description:
        data["description"] = description
    if extra:
        data["auth-extra-groups"] = ",".join(extra)
    for key, value in data.items():
        secret.data[key] = value.encode()
    return secret


@dataclass(frozen=True)
class TokenRecord:
    """What a bootstrap-token Secret says, as the authenticator, the cleaner and the CLI read it."""

    token: BootstrapToken
    expiration: dt.datetime | None
    usages: tuple[str, ...]
    groups: tuple[str, ...]
    description: str

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.expiration is not None and (now or dt.datetime.now(dt.UTC)) >= self.expiration


def read_token_secret(secret: core_pb2.Secret) -> TokenRecord:
    """Parse a bootstrap-token Secret; ValueError when it is not a well-formed one."""
    if secret.type != TOKEN_SECRET_TYPE:
        raise ValueError(f"secret {secret.metadata.name} is not of type {TOKEN_SECRET_TYPE}")
    data = {key: value.decode(errors="replace") for key, value in secret.data.items()}
    token = BootstrapToken(data.get("token-id", ""), data.get("token-secret", ""))
    if secret.metadata.name != token.secret_name:
        raise ValueError(f"secret {secret.metadata.name} does not hold token id {token.token_id}")
    expiration = None
    if data.get("expiration"):
        try:
            expiration = dt.datetime.fromisoformat(data["expiration"].replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"secret {secret.metadata.name} has a malformed expiration") from None
        if expiration.tzinfo is None:
            raise ValueError(f"secret {secret.metadata.name} has an expiration without a time zone")
    usages = tuple(
        key.removeprefix("usage-bootstrap-")
        for key, value in sorted(data.items())
        if key.startswith("usage-bootstrap-") and value == "true"
    )
    groups = tuple(g for g in data.get("auth-extra-groups", "").split(",") if g)
    for group in groups:
        if not _GROUP_RE.match(group):
            raise ValueError(
                f"secret {secret.metadata.name} names group {group!r} outside system:bootstrappers:"
            )
    return TokenRecord(token, expiration, usages, groups, data.get("description", ""))


# ------------------------------------------------------------------ join tokens


def ca_hash(ca_pem: bytes) -> str:
    """sha256 of the CA certificate's DER, hex (what the join token pins)."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def format_join_token(ca_pem: bytes, token: BootstrapToken) -> str:
    return f"{JOIN_TOKEN_PREFIX}{ca_hash(ca_pem)}::{token}"


def parse_join_token(text: str) -> tuple[str, BootstrapToken]:
    """(CA sha256 hex, bootstrap token) of `K10<sha256>::<id>.<secret>`."""
    text = text.strip()
    if not text.startswith(JOIN_TOKEN_PREFIX) or "::" not in text:
        raise ValueError('the join token is not of the form "K10<sha256 of the CA>::<id>.<secret>"')
    digest, _, credential = text[len(JOIN_TOKEN_PREFIX) :].partition("::")
    digest = digest.lower()
    if not _HASH_RE.match(digest):
        raise ValueError("the join token's CA hash is not 64 hexadecimal digits")
    return digest, parse(credential)


# ------------------------------------------------------------------ cluster-info


def host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def cluster_info_configmap(ca_pem: bytes, server: str) -> core_pb2.ConfigMap:
    """kube-public/cluster-info as kubeadm publishes it: a kubeconfig with the CA and server
    only (no credentials), readable by anyone."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "",
                "cluster": {
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                    "server": f"https://{server}",
                },
            }
        ],
        "contexts": [],
        "current-context": "",
        "preferences": {},
        "users": [],
    }
    configmap = core_pb2.ConfigMap()
    configmap.metadata.name, configmap.metadata.namespace = CLUSTER_INFO_NAME, CLUSTER_INFO_NAMESPACE
    configmap.data["kubeconfig"] = yaml.safe_dump(kubeconfig, sort_keys=False)
    return configmap


def cluster_info_ca(configmap: core_pb2.ConfigMap) -> bytes:
    """The CA a cluster-info ConfigMap publishes (JoinError when there is none)."""
    try:
        document = yaml.safe_load(configmap.data["kubeconfig"])
        encoded = document["clusters"][0]["cluster"]["certificate-authority-data"]
        ca_pem = base64.b64decode(encoded, validate=True)
        x509.load_pem_x509_certificate(ca_pem)
    except (KeyError, IndexError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise JoinError(f"{CLUSTER_INFO_NAMESPACE}/{CLUSTER_INFO_NAME} holds no usable CA: {exc}") from None
    return ca_pem


def _split_address(server: str) -> tuple[str, int]:
    host, _, port = server.removeprefix("https://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"server {server!r} is not host:port")
    return host.strip("[]"), int(port)


@contextlib.asynccontextmanager
async def _unverified_tls(server: str) -> AsyncIterator[grpc.aio.Channel]:
    """A gRPC channel over TLS that does not verify the server (gRPC cannot skip verification,
    so a private unix socket relays plaintext HTTP/2 into a TLS connection made with `ssl`).
    Only for reading public data whose integrity is checked afterwards."""
    host, port = _split_address(server)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    relays: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port, ssl=context)
        except (OSError, ssl.SSLError):
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(relay(reader, writer))
        relays.add(task)
        task.add_done_callback(relays.discard)

    with tempfile.TemporaryDirectory(prefix="pinnace-join-") as tmp:
        path = Path(tmp) / "tls.sock"
        listener = await asyncio.start_unix_server(track, str(path))
        channel = grpc.aio.insecure_channel(f"unix:{path}", options=channel_options())
        try:
            yield channel
        finally:
            await channel.close(None)
            listener.close()
            for task in list(relays):
                task.cancel()
            await asyncio.gather(*relays, return_exceptions=True)


async def _read_cluster_info(client: Client) -> core_pb2.ConfigMap:
    try:
        configmap = await client.get("configmaps", CLUSTER_INFO_NAME, CLUSTER_INFO_NAMESPACE)
    except (errors.UnauthorizedError, errors.ForbiddenError) as exc:
        raise JoinError(
            f"cannot read {CLUSTER_INFO_NAMESPACE}/{CLUSTER_INFO_NAME} anonymously: {exc.message} "
            "(the apiserver needs --anonymous-auth)"
        ) from None
    except errors.APIStatusError as exc:
        raise JoinError(f"cannot read {CLUSTER_INFO_NAMESPACE}/{CLUSTER_INFO_NAME}: {exc.message}") from None
    assert isinstance(configmap, core_pb2.ConfigMap)
    return configmap


@dataclass(frozen=True)
class ClusterInfo:
    ca_pem: bytes
    # The apiserver address cluster-info names (host:port of its client-certificate listener).
    server: str


async def fetch_cluster_ca(server: str, ca_sha256: str, *, timeout: float = 30.0) -> bytes:
    """The cluster CA (PEM) of the apiserver at `server` (host:port of its TLS token listener),
    trusted only because its sha256 matches `ca_sha256`. No credential is sent."""
    return (await fetch_cluster_info(server, ca_sha256, timeout=timeout)).ca_pem


async def fetch_cluster_info(server: str, ca_sha256: str, *, timeout: float = 30.0) -> ClusterInfo:
    """fetch_cluster_ca, plus the server address cluster-info publishes."""
    expected = ca_sha256.lower()
    if not _HASH_RE.match(expected):
        raise ValueError("the CA hash is not 64 hexadecimal digits")
    async with _unverified_tls(server) as channel:
        untrusted = cluster_info_ca(await _read_cluster_info(Client(channel, timeout=timeout)))
    actual = ca_hash(untrusted)
    if not hmac.compare_digest(actual, expected):
        raise JoinError(
            f"the cluster CA served by {server} has sha256 {actual}, but the join token pins {expected}: "
            "refusing to trust it (wrong server, or someone in the middle)"
        )
    # kubeadm's second look: the same document over TLS verified with the CA just pinned.
    async with Credentials(server, untrusted).client(timeout=timeout) as verified:
        configmap = await _read_cluster_info(verified)
    if cluster_info_ca(configmap) != untrusted:
        raise JoinError(f"{CLUSTER_INFO_NAMESPACE}/{CLUSTER_INFO_NAME} changed between reads")
    return ClusterInfo(untrusted, _cluster_info_server(configmap) or server)


async def cluster_server(server: str, ca_pem: bytes, *, timeout: float = 30.0) -> str:
    """The apiserver address cluster-info publishes, read over TLS verified with `ca_pem`;
    `server` itself when cluster-info cannot be read (no anonymous access)."""
    try:
        async with Credentials(server, ca_pem).client(timeout=timeout) as verified:
            configmap = await _read_cluster_info(verified)
    except JoinError:
        return server
    return _cluster_info_server(configmap) or server


def _cluster_info_server(configmap: core_pb2.ConfigMap) -> str:
    try:
        server = yaml.safe_load(configmap.data["kubeconfig"])["clusters"][0]["cluster"]["server"]
    except (KeyError, IndexError, TypeError, yaml.YAMLError):
        return ""
    return str(server).removeprefix("https://")


# ------------------------------------------------------------------ TLS bootstrap


def _csr_pem(key: ec.EllipticCurvePrivateKey, node_name: str) -> bytes:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def csr_object_name(request_pem: bytes) -> str:
    """Deterministic name, as the kubelet's `node-csr-<digest>`: re-sending the same request
    finds the object created before."""
    return "node-csr-" + hashlib.sha256(request_pem).hexdigest()[:32]


def _conditions(
    csr: certificates_pb2.CertificateSigningRequest,
) -> dict[str, certificates_pb2.CertificateSigningRequestCondition]:
    return {c.type: c for c in csr.status.conditions if c.status == "True"}


def _finished(csr: certificates_pb2.CertificateSigningRequest) -> bool:
    conditions = _conditions(csr)
    for refused in ("Denied", "Failed"):
        if refused in conditions:
            condition = conditions[refused]
            raise JoinError(
                f"certificate signing request {csr.metadata.name} was {refused.lower()}: "
                f"{condition.reason} {condition.message}".rstrip()
            )
    return bool(csr.status.certificate)


async def _wait_for_certificate(client: Client, name: str) -> bytes:
    while True:
        current = await client.get("certificatesigningrequests", name)
        assert isinstance(current, certificates_pb2.CertificateSigningRequest)
        if _finished(current):
            return current.status.certificate
        async for event in client.watch(
            "certificatesigningrequests",
            field_selector=f"metadata.name={name}",
            resource_version=current.metadata.resource_version,
            timeout_seconds=300,
        ):
            if event.type == "DELETED":
                raise JoinError(f"certificate signing request {name} was deleted before it was signed")
            csr = event.obj
            if isinstance(csr, certificates_pb2.CertificateSigningRequest) and _finished(csr):
                return csr.status.certificate


def _check_issued(cert_pem: bytes, key: ec.EllipticCurvePrivateKey, node_name: str) -> None:
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise JoinError(f"the signer returned an unreadable certificate: {exc}") from None
    ours = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if ours != theirs or not names or names[0].value != f"system:node:{node_name}":
        raise JoinError("the signer returned a certificate for another key or another node")


async def request_node_credentials(
    server: str,
    ca_pem: bytes,
    token: BootstrapToken,
    node_name: str,
    out_dir: Path,
    *,
    kubeconfig_path: Path | None = None,
    kubeconfig_server: str = "",
    timeout: float = 900.0,
) -> Path:
    """The kubelet's TLS bootstrap: ask for a client certificate (CN system:node:<node>,
    O system:nodes) with a CertificateSigningRequest sent as the bootstrap token, wait until
    the signer issues it, and write `<out_dir>/kubelet-client.{crt,key}`, `<out_dir>/ca.crt`
    and a kubeconfig (default `<out_dir>/kubelet.conf`) naming `kubeconfig_server` (default:
    `server`). Returns the kubeconfig's path."""
    key = ec.generate_private_key(ec.SECP256R1())
    request_pem = _csr_pem(key, node_name)
    csr = certificates_pb2.CertificateSigningRequest()
    csr.metadata.name = csr_object_name(request_pem)
    csr.spec.request = request_pem
    csr.spec.signer_name = KUBELET_CLIENT_SIGNER
    csr.spec.usages.extend(KUBELET_CLIENT_USAGES)
    async with Credentials(server, ca_pem, token=str(token)).client(timeout=30.0) as client:
        with contextlib.suppress(errors.AlreadyExistsError):
            await client.create(csr)
        try:
            cert_pem = await asyncio.wait_for(_wait_for_certificate(client, csr.metadata.name), timeout)
        except TimeoutError:
            raise JoinError(
                f"certificate signing request {csr.metadata.name} was not signed within {timeout:.0f}s "
                "(is the controller-manager running with the csrapproving and csrsigning controllers?)"
            ) from None
    _check_issued(cert_pem, key, node_name)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / "kubelet-client.crt", out_dir / "kubelet-client.key"
    key_path.touch(mode=0o600)
    key_path.chmod(0o600)
    key_path.write_bytes(key_pem)
    cert_path.write_bytes(cert_pem)
    (out_dir / "ca.crt").write_bytes(ca_pem)
    target = kubeconfig_path or out_dir / "kubelet.conf"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written last and renamed into place: its presence means the credentials are complete.
    partial = target.with_name(target.name + ".tmp")
    partial.touch(mode=0o600)
    partial.chmod(0o600)
    partial.write_text(
        render(
            f"system:node:{node_name}",
            kubeconfig_server or server,
            str((out_dir / "ca.crt").resolve()),
            cert_file=str(cert_path.resolve()),
            key_file=str(key_path.resolve()),
        )
    )
    partial.replace(target)
    return target
