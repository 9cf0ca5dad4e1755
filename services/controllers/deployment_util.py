"""The arithmetic of Deployments (kubernetes/pkg/controller/deployment/util), kept free of
I/O so it can be tested on its own: template hashes, maxSurge/maxUnavailable resolution,
how far a rolling update may go in one step, and proportional scaling across ReplicaSets."""

from __future__ import annotations

import math

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# The extensions/v1beta1 rollbackTo, as an annotation since apps/v1 has no field for it:
# "0" means the previous revision.
ROLLBACK_TO = "deployment.kubernetes.io/rollback-to"

_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(value: int) -> str:
    """rand.SafeEncodeString of the decimal form: no vowels, so no words in names."""
    return "".join(_SAFE[int(ch) % len(_SAFE)] if ch.isdigit() else ch for ch in str(value))


def template_hash(template: core_pb2.PodTemplateSpec, collision_count: int = 0) -> str:
    data = template.SerializeToString(deterministic=True)
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(fnv32a(data))


def strip_hash(template: core_pb2.PodTemplateSpec) -> core_pb2.PodTemplateSpec:
    copy = core_pb2.PodTemplateSpec()
    copy.CopyFrom(template)
    copy.metadata.labels.pop(HASH_LABEL, None)
    return copy


def equal_ignore_hash(a: core_pb2.PodTemplateSpec, b: core_pb2.PodTemplateSpec) -> bool:
    return strip_hash(a) == strip_hash(b)


def scaled_value(value: meta_pb2.IntOrString, total: int, round_up: bool) -> int:
    if value.WhichOneof("value") == "int_val":
        return value.int_val
    if value.WhichOneof("value") == "str_val":
        text = value.str_val.rstrip("%")
        percent = int(text) if text.isdigit() else 0
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return 0


def surge_and_unavailable(d: apps_pb2.Deployment) -> tuple[int, int]:
    """(maxSurge, maxUnavailable); both zero would deadlock, so unavailable becomes 1."""
    replicas = d.spec.replicas
    if d.spec.strategy.type != "RollingUpdate":
        return 0, 0
    rolling = d.spec.strategy.rolling_update
    surge = scaled_value(rolling.max_surge, replicas, True)
    unavailable = scaled_value(rolling.max_unavailable, replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def revision_of(rs: apps_pb2.ReplicaSet) -> int:
    text = rs.metadata.annotations.get(REVISION, "0")
    return int(text) if text.isdigit() else 0


def replicas_sum(sets: list[apps_pb2.ReplicaSet]) -> int:
    return sum(rs.spec.replicas for rs in sets)


def new_rs_replicas(
    d: apps_pb2.Deployment, all_sets: list[apps_pb2.ReplicaSet], new: apps_pb2.ReplicaSet
) -> int:
    """NewRSNewReplicas: how big the new ReplicaSet may be now."""
    if d.spec.strategy.type != "RollingUpdate":
        return d.spec.replicas
    surge, _ = surge_and_unavailable(d)
    current = replicas_sum(all_sets)
    max_total = d.spec.replicas + surge
    if current >= max_total:
        return new.spec.replicas
    scale_up = min(max_total - current, d.spec.replicas - new.spec.replicas)
    return new.spec.replicas + max(scale_up, 0)


def annotated_int(rs: apps_pb2.ReplicaSet, key: str) -> int | None:
    text = rs.metadata.annotations.get(key, "")
    return int(text) if text.isdigit() else None


def proportions(sets: list[apps_pb2.ReplicaSet], to_add: int, target_total: int) -> dict[str, int]:
    """Spread `to_add` (may be negative) over active ReplicaSets in proportion to their size
    (getProportion), the largest first; rounding leftovers go to the largest."""
    total = replicas_sum(sets)
    if not sets or to_add == 0:
        return {}
    ordered = sorted(sets, key=lambda rs: (-rs.spec.replicas, -rs.metadata.creation_timestamp.seconds))
    if to_add < 0:
        ordered = sorted(sets, key=lambda rs: (rs.spec.replicas, rs.metadata.creation_timestamp.seconds))
        ordered.reverse()
    result: dict[str, int] = {}
    added = 0
    for rs in ordered:
        share = 0 if total == 0 else round(rs.spec.replicas * to_add / total)
        share = min(share, to_add - added) if to_add > 0 else max(share, to_add - added)
        result[rs.metadata.name] = rs.spec.replicas + share
        added += share
    leftover = to_add - added
    if leftover:
        first = ordered[0].metadata.name
        result[first] = max(result[first] + leftover, 0)
    return result


def is_complete(d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet | None) -> bool:
    status = d.status
    return (
        new is not None
        and status.updated_replicas == d.spec.replicas
        and status.replicas == d.spec.replicas
        and status.available_replicas == d.spec.replicas
        and status.observed_generation >= d.metadata.generation
    )
