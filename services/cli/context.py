"""What every command gets: the parsed global flags, the client configuration, a lazily
connected API client, the namespace to act in, and the output streams (tests pass their own)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from services.cli.errors import CLIError
from services.client.client import Client
from services.client.config import ConfigError, Credentials, load

DEFAULT_CONFIG_PATHS = (Path.home() / ".pinnace" / "config", Path("/etc/pinnace/admin.conf"))


def config_path(flag: str) -> Path:
    """--kubeconfig, else $PINCTL_CONFIG or $KUBECONFIG, else ~/.pinnace/config, else
    /etc/pinnace/admin.conf (what `pinnace server` writes)."""
    if flag:
        return Path(flag)
    for variable in ("PINCTL_CONFIG", "KUBECONFIG"):
        if os.environ.get(variable):
            return Path(os.environ[variable].split(os.pathsep)[0])
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.exists():
            return candidate
    return DEFAULT_CONFIG_PATHS[0]


@dataclass
class CommandContext:
    args: argparse.Namespace
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _credentials: Credentials | None = None
    _client: Client | None = None

    @property
    def config_file(self) -> Path:
        return config_path(getattr(self.args, "kubeconfig", "") or "")

    def credentials(self) -> Credentials:
        if self._credentials is None:
            server = getattr(self.args, "server", "") or ""
            if server and getattr(self.args, "insecure_plaintext", False):
                self._credentials = Credentials(server=server, insecure=True)
                return self._credentials
            if not self.config_file.exists():
                raise CLIError(
                    f"no configuration has been provided: {self.config_file} does not exist (pass "
                    "--kubeconfig or --server, or set PINCTL_CONFIG or KUBECONFIG; see docs/cli.md)"
                )
            try:
                creds = load(self.config_file, getattr(self.args, "context", "") or "")
            except ConfigError as exc:
                raise CLIError(str(exc)) from None
            if server:
                creds = Credentials(
                    server=server,
                    ca_pem=creds.ca_pem,
                    cert_pem=creds.cert_pem,
                    key_pem=creds.key_pem,
                    token=creds.token,
                    namespace=creds.namespace,
                    insecure=creds.insecure,
                )
            self._credentials = creds
        return self._credentials

    def client(self) -> Client:
        if self._client is None:
            timeout = float(getattr(self.args, "request_timeout", 30.0) or 30.0)
            self._client = self.credentials().client(timeout=timeout)
        return self._client

    @property
    def namespace(self) -> str:
        """-n, else the context's namespace, else "default"."""
        explicit = getattr(self.args, "namespace", "") or ""
        if explicit:
            return str(explicit)
        try:
            return self.credentials().namespace or "default"
        except CLIError:
            return "default"

    @property
    def all_namespaces(self) -> bool:
        return bool(getattr(self.args, "all_namespaces", False))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def warn(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()
