"""The healthz and metrics HTTP endpoints (Kubernetes: :10256/healthz, :10249/metrics).

healthz answers 200 while the proxy keeps up: no change has been waiting longer than
`2 x syncPeriod` for a sync, and 503 otherwise (Kubernetes' ProxierHealthServer), with the
JSON body Kubernetes returns. It is a small asyncio HTTP server: two GET paths, no framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.proxy.metrics import ProxyMetrics


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else ""


class HealthState:
    def __init__(self, sync_period: float) -> None:
        self.timeout = 2 * sync_period
        self.last_updated = 0.0
        self.oldest_queued = 0.0  # time of the oldest change not synced yet, 0 if none

    def queued(self) -> None:
        if not self.oldest_queued:
            self.oldest_queued = time.time()

    def updated(self) -> None:
        self.last_updated = time.time()
        self.oldest_queued = 0.0

    def healthy(self) -> bool:
        if not self.last_updated:
            return False
        return not self.oldest_queued or time.time() - self.oldest_queued < self.timeout

    def body(self) -> bytes:
        return json.dumps(
            {"lastUpdated": _rfc3339(self.last_updated), "currentTime": _rfc3339(time.time())}
        ).encode()


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "0.0.0.0", int(port)


class HTTPEndpoints:
    def __init__(self, health: HealthState, metrics: ProxyMetrics) -> None:
        self.health = health
        self.metrics = metrics
        self.servers: list[asyncio.Server] = []

    async def start(self, healthz_listen: str, metrics_listen: str) -> None:
        for address in (healthz_listen, metrics_listen):
            if address:
                host, port = _split(address)
                self.servers.append(await asyncio.start_server(self._serve, host, port))

    def ports(self) -> list[int]:
        return [int(s.sockets[0].getsockname()[1]) for s in self.servers]

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = request.split(b" ", 2)[1].decode() if request.count(b" ") >= 2 else "/"
            if path.startswith("/healthz") or path.startswith("/livez"):
                status = "200 OK" if self.health.healthy() else "503 Service Unavailable"
                body, ctype = self.health.body(), "application/json"
            elif path.startswith("/metrics"):
                status, body, ctype = "200 OK", generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST
            else:
                status, body, ctype = "404 Not Found", b"not found\n", "text/plain"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
