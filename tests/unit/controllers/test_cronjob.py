from __future__ import annotations

import asyncio
import datetime as dt

from pinnace.api.batch.v1 import batch_pb2
from services.client.client import Client
from services.controllers.cronjob import CronJobController, unmet_time
from services.controllers.podutil import now_ts
from services.machinery import cron
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import Harness, until

CJ = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Allow
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: "pinnace/busybox:1.0"}]
"""


class FakeClock:
    def __init__(self) -> None:
        real = dt.datetime.now(dt.UTC)
        # Start half a minute into the next minute, so schedule times are unambiguous.
        self.now = real.replace(second=30, microsecond=0) + dt.timedelta(minutes=1)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, minutes: int) -> None:
        self.now += dt.timedelta(minutes=minutes)


async def jobs(client: Client) -> list[batch_pb2.Job]:
    return sorted((await client.list("jobs", "default")).items, key=lambda j: j.metadata.name)


def job_count(client: Client, n: int):
    async def check() -> bool:
        return len([j for j in await jobs(client) if not j.metadata.HasField("deletion_timestamp")]) == n

    return check


async def finish(client: Client, job: batch_pb2.Job) -> None:
    job = await client.get("jobs", job.metadata.name, "default")
    job.status.conditions.add(type="Complete", status="True", last_transition_time=now_ts())
    job.status.completion_time.CopyFrom(now_ts())
    await client.update_status(job)


async def test_allow_runs_each_minute_and_trims_history(client: Client, harness: Harness) -> None:
    clock = FakeClock()
    ctl = harness.add(CronJobController, clock=clock)
    await harness.start()
    await client.create(manifest(CJ))
    await until(job_count(client, 1))
    first = (await jobs(client))[0]
    assert first.metadata.name.startswith("tick-")
    clock.advance(1)
    ctl.enqueue("default/tick")
    await until(job_count(client, 2))

    async def two_active() -> bool:
        return len((await client.get("cronjobs", "tick", "default")).status.active) == 2

    await until(two_active)
    for job in await jobs(client):
        await finish(client, job)
    await until(job_count(client, 1))  # successfulJobsHistoryLimit: 1

    async def recorded() -> bool:
        cj = await client.get("cronjobs", "tick", "default")
        return cj.status.HasField("last_successful_time") and not cj.status.active

    await until(recorded)


async def test_forbid_and_replace(client: Client, harness: Harness) -> None:
    clock = FakeClock()
    ctl = harness.add(CronJobController, clock=clock)
    await harness.start()
    await client.create(manifest(CJ.replace("Allow", "Forbid")))
    await until(job_count(client, 1))
    clock.advance(1)
    ctl.enqueue("default/tick")
    await asyncio.sleep(0.3)
    assert len(await jobs(client)) == 1  # the first is still active
    old = (await jobs(client))[0].metadata.name
    # The skipped run is still due: with Replace it starts at once, replacing the active job.
    await client.patch("cronjobs", "tick", {"spec": {"concurrencyPolicy": "Replace"}}, "default")

    async def replaced() -> bool:
        live = [j.metadata.name for j in await jobs(client) if not j.metadata.HasField("deletion_timestamp")]
        return len(live) == 1 and live[0] != old

    await until(replaced)


async def test_starting_deadline_skips_late_runs(client: Client, harness: Harness) -> None:
    clock = FakeClock()
    ctl = harness.add(CronJobController, clock=clock)
    await harness.start()
    cj = manifest(CJ)
    cj.spec.starting_deadline_seconds = 10
    cj.spec.suspend = True
    await client.create(cj)
    await client.patch("cronjobs", "tick", {"spec": {"suspend": False}}, "default")
    await ctl.sync("default/tick")
    assert await jobs(client) == []  # the last schedule time is 30 s ago: too late to start
    # Without the deadline the same missed time starts a job late.
    await client.patch("cronjobs", "tick", {"spec": {"startingDeadlineSeconds": None}}, "default")
    await until(job_count(client, 1))


def test_unmet_time() -> None:
    schedule = cron.parse("*/5 * * * *")
    start = dt.datetime(2026, 1, 1, 10, 1, tzinfo=dt.UTC)
    latest, missed = unmet_time(schedule, start, dt.datetime(2026, 1, 1, 10, 17, tzinfo=dt.UTC))
    assert latest == dt.datetime(2026, 1, 1, 10, 15, tzinfo=dt.UTC) and missed == 3
    assert unmet_time(schedule, start, dt.datetime(2026, 1, 1, 10, 4, tzinfo=dt.UTC)) == (None, 0)
