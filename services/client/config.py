"""Client configuration in kubeconfig form: clusters (server, CA), users (client certificate
and key, or a bearer token), contexts (cluster + user + namespace) and the current context.
Every program takes one (`--kubeconfig`), and `pinnace bootstrap` writes one per identity."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml

from services.client.client import Client, channel_options


class ConfigError(ValueError):
    """The client configuration file is missing something or names something unknown."""


@dataclass(frozen=True)
class Credentials:
    server: str
    ca_pem: bytes = b""
    cert_pem: bytes = b""
    key_pem: bytes = b""
    token: str = ""
    namespace: str = "default"
    insecure: bool = False
    # kubeconfig's cluster.tls-server-name: the name every server's certificate is checked
    # against instead of the address. It lets one client name several apiservers
    # (server: ipv4:HOST:PORT,HOST:PORT; gRPC picks a live one) that share a --tls-san.
    tls_server_name: str = ""

    def channel(self) -> grpc.aio.Channel:
        options = channel_options()
        if self.insecure:
            return grpc.aio.insecure_channel(self.server, options=options)
        transport = grpc.ssl_channel_credentials(
            self.ca_pem or None, self.key_pem or None, self.cert_pem or None
        )
        if self.token:
            bearer = grpc.access_token_call_credentials(self.token)
            transport = grpc.composite_channel_credentials(transport, bearer)
        if self.tls_server_name:
            options.append(("grpc.ssl_target_name_override", self.tls_server_name))
        return grpc.aio.secure_channel(self.server, transport, options=options)

    def client(self, timeout: float = 30.0) -> Client:
        return Client(self.channel(), timeout=timeout)


def _named(items: Any, name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(what)
            if isinstance(body, dict):
                return body
    raise ConfigError(f"{what} {name!r} is not defined")


def _read(base: Path, body: dict[str, Any], key: str) -> bytes:
    if f"{key}-data" in body:
        return base64.b64decode(body[f"{key}-data"])
    if key in body:
        path = Path(body[key])
        return (path if path.is_absolute() else base / path).read_bytes()
    return b""


def load(path: Path, context: str = "") -> Credentials:
    """Credentials of `context` (default: current-context) from a kubeconfig-style file."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read client configuration {path}: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not a client configuration")
    name = context or document.get("current-context", "")
    if not name:
        raise ConfigError(f"{path} has no current-context; pass a context name")
    ctx = _named(document.get("contexts"), name, "context")
    cluster = _named(document.get("clusters"), ctx.get("cluster", ""), "cluster")
    user = _named(document.get("users"), ctx.get("user", ""), "user") if ctx.get("user") else {}
    base = path.parent
    server = str(cluster.get("server", "")).removeprefix("https://").removeprefix("grpcs://")
    if not server:
        raise ConfigError(f"cluster {ctx.get('cluster')!r} has no server")
    tls_server_name = cluster.get("tls-server-name", "")
    if not isinstance(tls_server_name, str):
        raise ConfigError(f"cluster {ctx.get('cluster')!r}: tls-server-name must be a string")
    return Credentials(
        server=server,
        ca_pem=_read(base, cluster, "certificate-authority"),
        cert_pem=_read(base, user, "client-certificate"),
        key_pem=_read(base, user, "client-key"),
        token=str(user.get("token", "")),
        namespace=str(ctx.get("namespace") or "default"),
        insecure=bool(cluster.get("insecure-plaintext", False)),
        tls_server_name=tls_server_name,
    )


def render(
    name: str,
    server: str,
    ca_file: str,
    *,
    cert_file: str = "",
    key_file: str = "",
    token: str = "",
    namespace: str = "default",
) -> str:
    """A one-context configuration file, as `pinnace bootstrap` writes them."""
    user: dict[str, str] = {}
    if cert_file:
        user["client-certificate"], user["client-key"] = cert_file, key_file
    if token:
        user["token"] = token
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "pinnace", "cluster": {"server": server, "certificate-authority": ca_file}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": "pinnace", "user": name, "namespace": namespace}}],
        "current-context": name,
    }
    return yaml.safe_dump(document, sort_keys=False)
