"""Indexed Jobs (completionMode: Indexed): each of the `completions` indexes 0..n-1 must
succeed once, and every pod knows its index (Kubernetes' indexed_job_utils).

A pod of index i carries the annotation and label `batch.kubernetes.io/job-completion-index:
"i"`, the environment variable JOB_COMPLETION_INDEX (from that annotation through the
downward API, in every container and init container), the hostname `<job>-<i>` unless the
template sets one, and a name generated from `<job>-<i>-`. The Job's status.completedIndexes
lists the succeeded indexes as ranges ("1,3-5,7"), and status.succeeded is how many there are.
Pure functions, no I/O; job.py applies them.
"""

from __future__ import annotations

from collections.abc import Iterable

from pinnace.api.batch.v1 import batch_pb2
from pinnace.api.core.v1 import core_pb2

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"


def is_indexed(job: batch_pb2.Job) -> bool:
    return job.spec.completion_mode == "Indexed"


def index_of(pod: core_pb2.Pod, completions: int) -> int | None:
    """The pod's index, or None when it has none or one outside 0..completions-1."""
    text = pod.metadata.annotations.get(COMPLETION_INDEX, "")
    if not text.isdigit():
        return None
    index = int(text)
    return index if index < completions else None


def parse_intervals(text: str, completions: int) -> set[int]:
    """completedIndexes back into indexes; malformed parts and indexes out of range are dropped."""
    found: set[int] = set()
    for part in text.split(","):
        bounds = part.strip().split("-")
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            continue
        low, high = int(bounds[0]), int(bounds[-1])
        found.update(range(low, min(high, completions - 1) + 1))
    return found


def format_intervals(indexes: Iterable[int]) -> str:
    """Sorted indexes as ranges: {1, 3, 4, 5, 7} -> "1,3-5,7"."""
    parts: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        start = end = ordered[i]
        while i + 1 < len(ordered) and ordered[i + 1] == end + 1:
            i += 1
            end = ordered[i]
        parts.append(str(start) if start == end else f"{start}-{end}")
        i += 1
    return ",".join(parts)


def completed(job: batch_pb2.Job, pods: Iterable[core_pb2.Pod], completions: int) -> set[int]:
    """Indexes already recorded in the status plus those of pods that succeeded since (a
    succeeded pod may be deleted later; the status keeps its index)."""
    done = parse_intervals(job.status.completed_indexes, completions)
    for pod in pods:
        if pod.status.phase == "Succeeded":
            index = index_of(pod, completions)
            if index is not None:
                done.add(index)
    return done


def pending(completions: int, done: set[int], running: set[int], count: int) -> list[int]:
    """The lowest `count` indexes neither done nor running."""
    wanted: list[int] = []
    for index in range(completions):
        if len(wanted) >= count:
            break
        if index not in done and index not in running:
            wanted.append(index)
    return wanted


def split_active(
    active: list[core_pb2.Pod], completions: int, done: set[int]
) -> tuple[dict[int, core_pb2.Pod], list[core_pb2.Pod]]:
    """(one active pod per index still to do, the pods to delete: no valid index, an index
    already done, or a second pod for an index; the older pod of a pair is kept)."""
    keep: dict[int, core_pb2.Pod] = {}
    extra: list[core_pb2.Pod] = []
    for pod in sorted(active, key=lambda p: (p.metadata.creation_timestamp.seconds, p.metadata.name)):
        index = index_of(pod, completions)
        if index is None or index in done or index in keep:
            extra.append(pod)
        else:
            keep[index] = pod
    return keep, extra


def decorate(pod: core_pb2.Pod, job_name: str, index: int) -> None:
    """What makes a pod the pod of index `index`."""
    value = str(index)
    pod.metadata.annotations[COMPLETION_INDEX] = value
    pod.metadata.labels[COMPLETION_INDEX] = value
    pod.metadata.generate_name = f"{job_name}-{index}-"
    if not pod.spec.hostname:
        pod.spec.hostname = f"{job_name}-{index}"
    for container in (*pod.spec.init_containers, *pod.spec.containers):
        if any(env.name == INDEX_ENV for env in container.env):
            continue
        env = container.env.add(name=INDEX_ENV)
        env.value_from.field_ref.field_path = f"metadata.annotations['{COMPLETION_INDEX}']"
