from __future__ import annotations

import asyncio

from services.client.client import Client
from services.controllers.job import JobController
from services.controllers.podutil import is_active
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import FakeKubelet, Harness, until

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: pi, namespace: default}
spec:
  completions: 3
  parallelism: 2
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: "pinnace/busybox:1.0"}]
"""


def condition(client: Client, ctype: str, reason: str = ""):
    async def check() -> bool:
        job = await client.get("jobs", "pi", "default")
        return any(
            c.type == ctype and c.status == "True" and (not reason or c.reason == reason)
            for c in job.status.conditions
        )

    return check


async def test_completions_with_bounded_parallelism(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(JobController)
    await harness.start()
    kubelet.finish = lambda pod: "Succeeded"
    peak = 0
    done = asyncio.Event()

    async def watch_parallelism() -> None:
        nonlocal peak
        while not done.is_set():
            pods = (await client.list("pods", "default", label_selector="job-name=pi")).items
            peak = max(peak, sum(1 for p in pods if is_active(p)))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch_parallelism())
    await client.create(manifest(JOB))
    await until(condition(client, "Complete"))
    done.set()
    await watcher
    job = await client.get("jobs", "pi", "default")
    assert job.status.succeeded == 3 and job.status.active == 0
    assert job.status.HasField("completion_time")
    assert peak <= 2
    pods = (await client.list("pods", "default", label_selector="job-name=pi")).items
    assert len(pods) == 3 and all(p.metadata.labels["controller-uid"] == job.metadata.uid for p in pods)


async def test_backoff_limit_fails_the_job(client: Client, harness: Harness, kubelet: FakeKubelet) -> None:
    harness.add(JobController)
    await harness.start()
    kubelet.finish = lambda pod: "Failed"
    await client.create(manifest(JOB))
    await until(condition(client, "Failed", "BackoffLimitExceeded"))
    job = await client.get("jobs", "pi", "default")
    assert job.status.failed >= 2 and job.status.active == 0


async def test_active_deadline_fails_the_job_and_stops_its_pods(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(JobController)
    await harness.start()
    job = manifest(JOB)
    job.spec.active_deadline_seconds = 1
    await client.create(job)
    await until(condition(client, "Failed", "DeadlineExceeded"), timeout=10)

    async def no_active() -> bool:
        pods = (await client.list("pods", "default", label_selector="job-name=pi")).items
        return not any(is_active(p) for p in pods)

    await until(no_active)


async def test_work_queue_job_without_completions(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(JobController)
    await harness.start()
    kubelet.finish = lambda pod: "Succeeded"
    job = manifest(JOB.replace("  completions: 3\n", ""))
    await client.create(job)
    await until(condition(client, "Complete"))
    assert (await client.get("jobs", "pi", "default")).status.succeeded >= 1
