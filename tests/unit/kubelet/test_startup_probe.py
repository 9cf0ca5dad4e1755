"""ProbeManager with a startup probe: liveness and readiness wait for it, it stops once it
succeeds, and reaching its failure threshold reports FAILURE (the kubelet then restarts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pinnace.api.core.v1 import core_pb2
from services.kubelet import probes
from services.kubelet.probes import LIVENESS, READINESS, STARTUP, HandlerError, ProbeManager, Result

_real_sleep = asyncio.sleep


class ScriptedHandlers:
    """Answers each probe by the first word of its exec command; counts the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.startup_ok_after = 3  # startup attempts that fail before one succeeds

    async def run(self, action: Any, container: Any, container_id: str, pod_ip: str, timeout: float) -> str:
        kind = action.exec.command[0]
        self.calls.append(kind)
        if kind == STARTUP and self.calls.count(STARTUP) <= self.startup_ok_after:
            raise HandlerError("not yet")
        return ""


@pytest.fixture
async def fast_sleep(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Probe periods become a bare yield, so workers run many rounds without waiting."""

    async def sleep(delay: float, *args: Any) -> None:
        await _real_sleep(0)

    monkeypatch.setattr(probes.asyncio, "sleep", sleep)
    yield


def _container(startup_failures: int = 30) -> core_pb2.Container:
    def probe(kind: str, failure_threshold: int = 3) -> core_pb2.Probe:
        p = core_pb2.Probe(period_seconds=1, failure_threshold=failure_threshold)
        p.exec.command.append(kind)
        return p

    c = core_pb2.Container(name="app")
    c.startup_probe.CopyFrom(probe(STARTUP, startup_failures))
    c.liveness_probe.CopyFrom(probe(LIVENESS))
    c.readiness_probe.CopyFrom(probe(READINESS))
    return c


async def _until(condition: Callable[[], bool], rounds: int = 500) -> None:
    for _ in range(rounds):
        if condition():
            return
        await _real_sleep(0)
    raise AssertionError("condition not reached")


def _manager(handlers: ScriptedHandlers, changes: list[tuple[str, str]]) -> ProbeManager:
    return ProbeManager(handlers, lambda uid, name, kind, msg: changes.append((kind, msg)))  # type: ignore[arg-type]


async def test_liveness_and_readiness_wait_for_startup_then_startup_stops(fast_sleep: None) -> None:
    handlers, changes = ScriptedHandlers(), []  # type: ignore[var-annotated]
    manager = _manager(handlers, changes)
    container = _container()
    manager.ensure("u1", container, "cid-1", started_at=0.0, pod_ip="10.0.0.1")
    try:
        assert not manager.started("u1", container, "cid-1")
        assert not manager.ready("u1", container, "cid-1")
        await _until(lambda: handlers.calls.count(STARTUP) == 3)
        # Three failed startup attempts and nothing else probed yet.
        assert set(handlers.calls) == {STARTUP} and not manager.started("u1", container, "cid-1")
        await _until(lambda: manager.started("u1", container, "cid-1"))
        await _until(lambda: handlers.calls.count(LIVENESS) >= 3 and handlers.calls.count(READINESS) >= 3)
        first_other = min(handlers.calls.index(LIVENESS), handlers.calls.index(READINESS))
        assert handlers.calls[:first_other] == [STARTUP] * 4
        # The startup worker returned after its success: no further startup attempts.
        assert handlers.calls.count(STARTUP) == 4
        assert manager.ready("u1", container, "cid-1")
        assert manager.result("u1", "app", LIVENESS, "cid-1") == Result.SUCCESS
        assert (STARTUP, "") in changes
        # A new container id starts over: not started until its own startup probe succeeds.
        assert not manager.started("u1", container, "cid-2")
    finally:
        await manager.stop_all()


async def test_startup_failure_threshold_reports_failure_and_liveness_never_runs(fast_sleep: None) -> None:
    handlers, changes = ScriptedHandlers(), []  # type: ignore[var-annotated]
    handlers.startup_ok_after = 10**6
    manager = _manager(handlers, changes)
    container = _container(startup_failures=2)
    manager.ensure("u1", container, "cid-1", started_at=0.0, pod_ip="10.0.0.1")
    try:
        await _until(lambda: manager.result("u1", "app", STARTUP, "cid-1") == Result.FAILURE)
        assert handlers.calls.count(STARTUP) == 2
        assert changes == [(STARTUP, "not yet")]
        await _until(lambda: handlers.calls.count(STARTUP) >= 6)
        assert LIVENESS not in handlers.calls and READINESS not in handlers.calls
        assert not manager.ready("u1", container, "cid-1")
    finally:
        await manager.stop_all()


def test_without_startup_probe_container_counts_as_started() -> None:
    manager = ProbeManager(ScriptedHandlers(), lambda *a: None)  # type: ignore[arg-type]
    container = core_pb2.Container(name="app")
    assert manager.started("u1", container, "cid-1") and manager.ready("u1", container, "cid-1")
