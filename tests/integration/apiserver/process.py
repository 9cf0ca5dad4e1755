"""Run the real pinnace-apiserver program as a child process, as an operator would."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiserverProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    # As Kubernetes' own integration tests do: nothing here runs the controllers that create
    # the default ServiceAccounts (and root CA ConfigMaps) pods need under that plugin.
    disabled_admission: list[str] = field(default_factory=lambda: ["ServiceAccount"])
    # A `pinnace bootstrap` folder: serve TLS with its certificates (mTLS on `port`, bearer
    # tokens on `token_port`) with the Node and RBAC authorisers, instead of plaintext.
    tls_dir: Path | None = None
    token_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20.0) -> None:
        args = [
            sys.executable,
            "-m",
            "pinnace_cmd.apiserver",
            "--listen",
            self.address,
            "--sqlite-path",
            str(self.data_dir / "state.db"),
            *self._security_args(),
            "--disable-admission-plugins",
            ",".join(self.disabled_admission),
            *self.extra_args,
        ]
        log = (self.data_dir / "apiserver.log").open("ab")
        env = {**os.environ, "PINNACE_LOG_FORMAT": "json"}
        self.process = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"apiserver exited: {(self.data_dir / 'apiserver.log').read_text()[-2000:]}"
                    )
                try:
                    answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError("apiserver did not become healthy")
                await asyncio.sleep(0.1)

    def _security_args(self) -> list[str]:
        if self.tls_dir is None:
            return ["--insecure"]
        pki = self.tls_dir / "pki"
        return [
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.key'}",
            f"--token-listen=127.0.0.1:{self.token_port}",
            "--authorization-mode=Node,RBAC",
        ]

    def _channel(self) -> grpc.aio.Channel:
        if self.tls_dir is None:
            return grpc.aio.insecure_channel(self.address)
        pki = self.tls_dir / "pki"
        credentials = grpc.ssl_channel_credentials(
            (pki / "ca.crt").read_bytes(), (pki / "admin.key").read_bytes(), (pki / "admin.crt").read_bytes()
        )
        return grpc.aio.secure_channel(self.address, credentials)

    def kill(self) -> None:
        """kill -9: no chance to flush or clean up."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
