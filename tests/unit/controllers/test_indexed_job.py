"""Indexed Jobs: one success per index, the index in each pod, completedIndexes."""

from __future__ import annotations

import pytest

from pinnace.api.batch.v1 import batch_pb2
from pinnace.api.core.v1 import core_pb2
from services.client import errors
from services.client.client import Client
from services.controllers import indexed_job
from services.controllers.job import JobController
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import FakeKubelet, Harness, until
from tests.unit.controllers.test_job import JOB, condition

INDEXED = JOB.replace("  completions: 3\n", "  completions: 4\n  completionMode: Indexed\n").replace(
    "backoffLimit: 1", "backoffLimit: 3"
)


async def job_pods(client: Client) -> list[core_pb2.Pod]:
    return list((await client.list("pods", "default", label_selector="job-name=pi")).items)  # type: ignore[arg-type]


async def test_indexed_job_runs_each_index_once(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(JobController)
    await harness.start()
    kubelet.finish = lambda pod: "Succeeded"
    await client.create(manifest(INDEXED))
    await until(condition(client, "Complete"))
    job = await client.get("jobs", "pi", "default")
    assert isinstance(job, batch_pb2.Job)
    assert (job.status.completed_indexes, job.status.succeeded, job.status.active) == ("0-3", 4, 0)
    pods = await job_pods(client)
    by_index = {int(p.metadata.annotations[indexed_job.COMPLETION_INDEX]): p for p in pods}
    assert sorted(by_index) == [0, 1, 2, 3] and len(pods) == 4
    for index, pod in by_index.items():
        assert pod.metadata.labels[indexed_job.COMPLETION_INDEX] == str(index)
        assert pod.metadata.name.startswith(f"pi-{index}-")
        assert pod.spec.hostname == f"pi-{index}"
        [env] = [e for e in pod.spec.containers[0].env if e.name == "JOB_COMPLETION_INDEX"]
        assert env.value_from.field_ref.field_path == (
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        )


async def test_a_failed_index_is_retried_until_it_succeeds(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(JobController)
    await harness.start()
    failures: list[str] = []

    def finish(pod: core_pb2.Pod) -> str:
        if pod.metadata.annotations[indexed_job.COMPLETION_INDEX] == "2" and not failures:
            failures.append(pod.metadata.name)
            return "Failed"
        return "Succeeded"

    kubelet.finish = finish
    await client.create(manifest(INDEXED))
    await until(condition(client, "Complete"))
    job = await client.get("jobs", "pi", "default")
    assert (job.status.completed_indexes, job.status.succeeded, job.status.failed) == ("0-3", 4, 1)
    index_two = [
        p for p in await job_pods(client) if p.metadata.annotations[indexed_job.COMPLETION_INDEX] == "2"
    ]
    assert sorted(p.status.phase for p in index_two) == ["Failed", "Succeeded"]


async def test_indexed_job_needs_completions(client: Client) -> None:
    bad = manifest(INDEXED.replace("  completions: 4\n", ""))
    with pytest.raises(
        errors.InvalidError, match=r"spec\.completions: Required value: when completion mode is Indexed"
    ):
        await client.create(bad)


def test_intervals_round_trip_and_ignore_garbage() -> None:
    assert indexed_job.format_intervals({7, 1, 3, 4, 5}) == "1,3-5,7"
    assert indexed_job.format_intervals(()) == ""
    assert indexed_job.parse_intervals("1,3-5,7", 10) == {1, 3, 4, 5, 7}
    assert indexed_job.parse_intervals("x,2-,-1,4-6,12", 6) == {4, 5}


def _pod(name: str, index: str | None, created: int) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name = name
    pod.metadata.creation_timestamp.FromSeconds(created)
    if index is not None:
        pod.metadata.annotations[indexed_job.COMPLETION_INDEX] = index
    return pod


def test_split_active_keeps_one_older_pod_per_open_index() -> None:
    pods = [
        _pod("dup-new", "1", 20),
        _pod("one", "1", 10),
        _pod("done", "0", 5),
        _pod("none", None, 5),
        _pod("range", "9", 5),
        _pod("two", "2", 30),
    ]
    keep, extra = indexed_job.split_active(pods, 4, {0})
    assert {i: p.metadata.name for i, p in keep.items()} == {1: "one", 2: "two"}
    assert sorted(p.metadata.name for p in extra) == ["done", "dup-new", "none", "range"]
    assert indexed_job.pending(4, {0}, set(keep), 5) == [3]
