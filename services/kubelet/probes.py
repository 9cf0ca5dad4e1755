"""Liveness, readiness and startup probes, and the lifecycle hooks that share their handlers.

One asyncio task probes one container for one kind of probe, from initialDelaySeconds after
the container started, every periodSeconds, each attempt bounded by timeoutSeconds; a result
flips only after successThreshold successes or failureThreshold failures in a row. A flip
wakes the pod's worker: liveness (or startup) failure makes it restart the container,
readiness drives the Ready condition. Liveness and readiness wait for the startup probe.

exec runs through CRI ExecSync; httpGet and tcpSocket connect to the pod IP from the node's
network namespace (netns.SocketFactory), where the pod network is reachable."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.kubelet.cri_client import CRI, CRIError
from services.kubelet.netns import SocketFactory
from services.machinery.logs import get_logger

log = get_logger(__name__)

LIVENESS, READINESS, STARTUP = "liveness", "readiness", "startup"
MAX_BODY = 10 * 1024


class Result(Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class HandlerError(Exception):
    pass


def resolve_port(port: meta_pb2.IntOrString, container: core_pb2.Container) -> int:
    if port.HasField("str_val"):
        for cport in container.ports:
            if cport.name == port.str_val:
                return cport.container_port
        if port.str_val.isdigit():
            return int(port.str_val)
        raise HandlerError(f'port "{port.str_val}" not found in the container\'s ports')
    return port.int_val


class Handlers:
    """Runs an exec/httpGet/tcpSocket action once; raises HandlerError on failure."""

    def __init__(self, runtime: CRI, sockets: SocketFactory) -> None:
        self.runtime = runtime
        self.sockets = sockets

    async def run(
        self,
        action: core_pb2.Probe | core_pb2.LifecycleHandler,
        container: core_pb2.Container,
        container_id: str,
        pod_ip: str,
        timeout: float,
    ) -> str:
        if action.HasField("exec"):
            return await self.exec(container_id, list(action.exec.command), timeout)
        if action.HasField("http_get"):
            return await self.http_get(action.http_get, container, pod_ip, timeout)
        if action.HasField("tcp_socket"):
            return await self.tcp(action.tcp_socket, container, pod_ip, timeout)
        raise HandlerError("no action (exec, httpGet or tcpSocket) given")

    async def exec(self, container_id: str, command: list[str], timeout: float) -> str:
        try:
            response = await self.runtime.exec_sync(container_id, command, max(1, int(timeout)))
        except CRIError as exc:
            raise HandlerError(f"exec {command}: {exc.details or exc.code.name}") from None
        output = (response.stdout + response.stderr).decode(errors="replace")[:MAX_BODY]
        if response.exit_code != 0:
            raise HandlerError(f"command {command} exited with {response.exit_code}: {output.strip()}")
        return output

    async def http_get(
        self, action: core_pb2.HTTPGetAction, container: core_pb2.Container, pod_ip: str, timeout: float
    ) -> str:
        host = action.host or pod_ip
        port = resolve_port(action.port, container)
        path = action.path or "/"
        if not host:
            raise HandlerError("the pod has no IP yet")
        try:
            return await asyncio.wait_for(self._http(host, port, path, action, timeout), timeout)
        except TimeoutError:
            raise HandlerError(f"Get http://{host}:{port}{path}: timeout after {timeout:g}s") from None
        except OSError as exc:
            raise HandlerError(f"Get http://{host}:{port}{path}: {exc.strerror or exc}") from None

    async def _http(
        self, host: str, port: int, path: str, action: core_pb2.HTTPGetAction, timeout: float
    ) -> str:
        reader, writer = await self.sockets.open_connection(host, port, timeout)
        try:
            if action.scheme.upper() == "HTTPS":
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                await writer.start_tls(context, server_hostname=host)
            headers = {"Host": f"{host}:{port}", "User-Agent": "kube-probe/1.0", "Accept": "*/*"}
            for header in action.http_headers:
                headers[header.name] = header.value
            headers["Connection"] = "close"
            head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            writer.write(head.encode())
            await writer.drain()
            status_line = (await reader.readline()).decode(errors="replace").strip()
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[1].isdigit():
                raise HandlerError(f"malformed HTTP response: {status_line!r}")
            code = int(parts[1])
            with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await reader.readuntil(b"\r\n\r\n")
            body = (await reader.read(MAX_BODY)).decode(errors="replace")
            if not 200 <= code < 400:
                raise HandlerError(f"HTTP probe failed with statuscode: {code}")
            return body
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def tcp(
        self, action: core_pb2.TCPSocketAction, container: core_pb2.Container, pod_ip: str, timeout: float
    ) -> str:
        host = action.host or pod_ip
        port = resolve_port(action.port, container)
        if not host:
            raise HandlerError("the pod has no IP yet")
        try:
            _, writer = await self.sockets.open_connection(host, port, timeout)
        except (OSError, TimeoutError) as exc:
            raise HandlerError(
                f"dial tcp {host}:{port}: {getattr(exc, 'strerror', None) or exc or 'timeout'}"
            ) from None
        writer.close()
        return ""


@dataclass
class _Target:
    uid: str
    container: core_pb2.Container
    container_id: str
    started_at: float  # seconds since the epoch
    pod_ip: str


class ProbeManager:
    """Probe workers per (pod uid, container name, kind) and their latest results."""

    def __init__(self, handlers: Handlers, on_change: Callable[[str, str, str, str], None]) -> None:
        self.handlers = handlers
        self.on_change = on_change  # (uid, container name, kind, message)
        self._workers: dict[tuple[str, str, str], tuple[str, asyncio.Task[None]]] = {}
        self._results: dict[tuple[str, str, str], tuple[str, Result]] = {}

    def result(self, uid: str, name: str, kind: str, container_id: str) -> Result:
        found = self._results.get((uid, name, kind))
        if found is None or found[0] != container_id:
            return {LIVENESS: Result.SUCCESS, READINESS: Result.FAILURE, STARTUP: Result.UNKNOWN}[kind]
        return found[1]

    def started(self, uid: str, container: core_pb2.Container, container_id: str) -> bool:
        if not container.HasField("startup_probe"):
            return True
        return self.result(uid, container.name, STARTUP, container_id) == Result.SUCCESS

    def ready(self, uid: str, container: core_pb2.Container, container_id: str) -> bool:
        if not self.started(uid, container, container_id):
            return False
        if not container.HasField("readiness_probe"):
            return True
        return self.result(uid, container.name, READINESS, container_id) == Result.SUCCESS

    def ensure(
        self, uid: str, container: core_pb2.Container, container_id: str, started_at: float, pod_ip: str
    ) -> None:
        """Probe this container (no-op when its workers already run for this container id)."""
        for kind, field_name in (
            (LIVENESS, "liveness_probe"),
            (READINESS, "readiness_probe"),
            (STARTUP, "startup_probe"),
        ):
            if not container.HasField(field_name):
                continue
            key = (uid, container.name, kind)
            current = self._workers.get(key)
            if current is not None and current[0] == container_id and not current[1].done():
                continue
            if current is not None:
                current[1].cancel()
            target = _Target(uid, container, container_id, started_at, pod_ip)
            task = asyncio.get_running_loop().create_task(
                self._worker(kind, getattr(container, field_name), target),
                name=f"probe-{kind}-{container.name}",
            )
            self._workers[key] = (container_id, task)

    def stop_container(self, uid: str, name: str) -> None:
        for kind in (LIVENESS, READINESS, STARTUP):
            worker = self._workers.pop((uid, name, kind), None)
            if worker is not None:
                worker[1].cancel()

    def stop_pod(self, uid: str) -> None:
        for key in [k for k in self._workers if k[0] == uid]:
            self._workers.pop(key)[1].cancel()
        for key in [k for k in self._results if k[0] == uid]:
            del self._results[key]

    async def stop_all(self) -> None:
        tasks = [task for _, task in self._workers.values()]
        self._workers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def _set(self, target: _Target, kind: str, result: Result, message: str) -> None:
        key = (target.uid, target.container.name, kind)
        previous = self._results.get(key)
        self._results[key] = (target.container_id, result)
        if previous is None or previous != (target.container_id, result):
            self.on_change(target.uid, target.container.name, kind, message)

    async def _worker(self, kind: str, probe: core_pb2.Probe, target: _Target) -> None:
        period = max(1, probe.period_seconds or 10)
        timeout = max(1, probe.timeout_seconds or 1)
        success_threshold = max(1, probe.success_threshold or 1)
        failure_threshold = max(1, probe.failure_threshold or 3)
        delay = probe.initial_delay_seconds - (time.time() - target.started_at)
        if delay > 0:
            await asyncio.sleep(delay)
        successes = failures = 0
        while True:
            if kind != STARTUP and not self.started(target.uid, target.container, target.container_id):
                await asyncio.sleep(1)
                continue
            message = ""
            try:
                await self.handlers.run(probe, target.container, target.container_id, target.pod_ip, timeout)
                ok = True
            except HandlerError as exc:
                ok, message = False, str(exc)
            except Exception as exc:  # a probe must never kill its worker
                ok, message = False, f"probe error: {exc}"
            if ok:
                successes, failures = successes + 1, 0
                if successes >= success_threshold:
                    self._set(target, kind, Result.SUCCESS, "")
                    if kind == STARTUP:
                        return
            else:
                successes, failures = 0, failures + 1
                log.debug("probe failed", kind=kind, container=target.container.name, message=message)
                if failures >= failure_threshold:
                    self._set(target, kind, Result.FAILURE, message)
                    if kind != READINESS:
                        failures = 0
            await asyncio.sleep(period)
