"""What the e2e tests share beyond the lab itself: waiting for the cluster to reach a state,
HTTP over sockets opened inside lab hosts, and a client that polls a Service in the background,
bounded in time and in requests, and keeps every answer and every failure.

All traffic goes to lab addresses through `lab.connect`, so it starts inside a lab namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.errors import NotFoundError, UnavailableError

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
# Pods of these tests leave a node it lost within seconds instead of Kubernetes' default 300 s
# (DefaultTolerationSeconds), as a user who wants fast fail-over writes it.
FAST_EVICTION = [
    {
        "key": f"node.kubernetes.io/{reason}",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 2,
    }
    for reason in ("unreachable", "not-ready")
]


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 90.0) -> T:
    """check's first truthy result; an AssertionError naming `what` and the last result after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
        except (NotFoundError, UnavailableError, ConnectionError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.5)


def is_ready(pod: core_pb2.Pod) -> bool:
    return (
        pod.status.phase == "Running"
        and not pod.metadata.deletion_timestamp.seconds
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
    )


async def pods(client: Client, namespace: str, selector: str = "") -> list[core_pb2.Pod]:
    listed = await client.list("pods", namespace, label_selector=selector)
    return [p for p in listed.items if isinstance(p, core_pb2.Pod)]


async def ready_pods(
    client: Client, namespace: str, selector: str, count: int, timeout: float = 120.0
) -> list[core_pb2.Pod]:
    """Exactly `count` live pods matching selector, all Running and Ready."""

    async def check() -> list[core_pb2.Pod] | None:
        live = [
            p for p in await pods(client, namespace, selector) if not p.metadata.deletion_timestamp.seconds
        ]
        return live if len(live) == count and all(is_ready(p) for p in live) else None

    return await eventually(check, f"{count} ready pods {selector!r} in {namespace}", timeout)


async def node_ready(client: Client, name: str) -> str:
    node = await client.get("nodes", name)
    return next((c.status for c in node.status.conditions if c.type == "Ready"), "Unknown")  # type: ignore[attr-defined]


async def endpoint_ips(client: Client, namespace: str, service: str) -> set[str]:
    endpoints = await client.get("endpoints", service, namespace)
    return {a.ip for subset in endpoints.subsets for a in subset.addresses}  # type: ignore[attr-defined]


def proxied_ips(lab: Any, host: str, namespace: str, service: str) -> set[str]:
    """The pod IPs the kube-proxy on `host` DNATs `namespace/service` to now, read from the nat
    table it programmed (iptables mode; each endpoint rule carries the Service's name as a
    comment, as in Kubernetes below 1,000 endpoints)."""
    rule = re.compile(
        rf'--comment "?{re.escape(namespace)}/{re.escape(service)}(?::[^"\s]*)?"? .*'
        r"-j DNAT --to-destination (\S+):\d+"
    )
    nat = lab.exec(host, ["iptables-save", "-t", "nat"]).stdout
    return {match.group(1) for match in map(rule.search, nat.splitlines()) if match}


async def proxies_route_to(lab: Any, hosts: list[str], namespace: str, service: str, ips: set[str]) -> float:
    """Wait until the kube-proxy of every host in `hosts` sends the Service to exactly `ips`;
    the moment (time.monotonic()) it saw that. The Endpoints object changes first and every
    proxy follows a moment later, in Kubernetes as here, so a request is held to the new
    Endpoints only when it was sent after this moment."""

    async def routed() -> bool:
        seen = [await asyncio.to_thread(proxied_ips, lab, host, namespace, service) for host in hosts]
        return all(found == ips for found in seen)

    await eventually(
        routed, f"the proxies on {', '.join(hosts)} to route {namespace}/{service} to {sorted(ips)}", 60
    )
    return time.monotonic()


@contextlib.asynccontextmanager
async def namespace(client: Client, prefix: str) -> AsyncIterator[str]:
    """A fresh namespace for one test, deleted (with everything in it) afterwards."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    ns = core_pb2.Namespace()
    ns.metadata.name = name
    await client.create(ns)
    try:
        yield name
    finally:
        with contextlib.suppress(NotFoundError):
            await client.delete("namespaces", name)


async def namespace_gone(client: Client, name: str, timeout: float = 120.0) -> None:
    async def gone() -> bool:
        try:
            await client.get("namespaces", name)
        except NotFoundError:
            return True
        return False

    await eventually(gone, f"namespace {name} to be deleted", timeout)


async def answering(request: Callable[[], str], what: str, timeout: float = 60.0) -> str:
    """The first answer `request` gets. A Service's rules reach each kube-proxy a moment after
    its pods turn Ready (the Endpoints controller writes, then every proxy syncs), in Kubernetes
    as here, so a test waits for this before it starts counting failed requests."""

    async def once() -> str | None:
        try:
            return await asyncio.to_thread(request)
        except (AssertionError, ValueError):
            return None

    return await eventually(once, what, timeout)


def http_get(
    lab: Any, host: str, ip: str, port: int, path: str = "/", timeout: float = 2.0
) -> tuple[int, str]:
    """One HTTP/1.0 GET from inside `host`'s namespace: (status, body). Raises OSError or
    ValueError when the connection fails or the answer is not HTTP."""
    sock: socket.socket = lab.connect(host, ip, port)
    try:
        sock.settimeout(timeout)
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    finally:
        sock.close()
    head, _, body = b"".join(chunks).decode(errors="replace").partition("\r\n\r\n")
    parts = head.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP answer: {head[:80]!r}")
    return int(parts[1]), body


@dataclass
class Answer:
    started: float  # time.monotonic() when the request was sent
    at: float  # ... and when its answer or failure came back
    ok: bool
    text: str  # the body when ok, the error otherwise


@dataclass
class Poller:
    """Sends `request` over and over from a thread until stopped, at most max_requests times
    and for at most max_seconds; `request` returns the answer's text or raises."""

    request: Callable[[], str]
    interval: float = 0.1
    max_requests: int = 3000
    max_seconds: float = 300.0
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2e-poller", daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set() and len(self.answers) < self.max_requests:
            if time.monotonic() - started > self.max_seconds:
                break
            sent = time.monotonic()
            try:
                text = self.request()
            except Exception as exc:  # every failure counts, whatever its kind
                self.answers.append(Answer(sent, time.monotonic(), False, f"{type(exc).__name__}: {exc}"))
            else:
                self.answers.append(Answer(sent, time.monotonic(), True, text))
            self._stop.wait(self.interval)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    async def at_least(self, count: int) -> bool:
        """For `eventually`: the poller has made `count` requests."""
        return len(self.answers) >= count

    def sent_since(self, moment: float) -> list[Answer]:
        """The answers to requests sent at or after `moment` (time.monotonic()). A request sent
        before it but answered after belongs to the earlier state, so counting by index would
        blame the new state for an old request's time-out."""
        return [a for a in self.answers if a.started >= moment]

    def sent_between(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if start <= a.started < end]

    async def sent_at_least(self, count: int, moment: float) -> bool:
        """For `eventually`: `count` requests sent since `moment` have been answered."""
        return len(self.sent_since(moment)) >= count

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if not a.ok]

    def counts(self, answers: list[Answer] | None = None) -> Counter[str]:
        return Counter(a.text for a in (self.answers if answers is None else answers) if a.ok)

    def summary(self) -> str:
        failed = Counter(a.text for a in self.failures)
        where = [i for i, a in enumerate(self.answers) if not a.ok]
        return (
            f"{len(self.answers)} requests, {len(self.failures)} failed {dict(failed)} "
            f"(request numbers {where[:20]}); answers {dict(self.counts())}"
        )
