"""Taints and tolerations as the scheduler's and the taint manager's rules define them
(v1helper.TolerationsTolerateTaint)."""

from __future__ import annotations

from collections.abc import Iterable

from pinnace.api.core.v1 import core_pb2

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"


def tolerates(toleration: core_pb2.Toleration, taint: core_pb2.Taint) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.operator == "Exists":
        return not toleration.key or toleration.key == taint.key
    return toleration.key == taint.key and toleration.value == taint.value


def untolerated(
    tolerations: Iterable[core_pb2.Toleration], taints: Iterable[core_pb2.Taint], effects: tuple[str, ...]
) -> list[core_pb2.Taint]:
    listed = list(tolerations)
    return [t for t in taints if t.effect in effects and not any(tolerates(tol, t) for tol in listed)]


def toleration_seconds(tolerations: Iterable[core_pb2.Toleration], taint: core_pb2.Taint) -> float | None:
    """How long a pod may stay under a NoExecute taint: None forever, 0 not at all."""
    best: float | None = 0.0
    found = False
    for tol in tolerations:
        if not tolerates(tol, taint):
            continue
        seconds = float(tol.toleration_seconds) if tol.HasField("toleration_seconds") else None
        if not found:
            best, found = seconds, True
        elif best is not None and (seconds is None or seconds > best):
            best = seconds
    return best if found else 0.0
