"""CronJobs: create a Job from jobTemplate at every time the cron schedule names.

- The most recent unmet schedule time since lastScheduleTime (or creation) runs; older
  missed times are skipped (with a TooManyMissedTimes warning past 100), as Kubernetes does.
- startingDeadlineSeconds: a time missed by more than this is not started late.
- concurrencyPolicy: Allow, Forbid (skip while a Job is active) or Replace (delete it).
- Job names are `<cronjob>-<scheduled time in minutes>`, so a restarted controller never
  runs one schedule time twice (the create answers AlreadyExists).
- Finished Jobs beyond successful/failedJobsHistoryLimit are deleted, oldest first.
The clock is injectable so tests step through minutes without waiting for them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.batch.v1 import batch_pb2
from services.client.errors import AlreadyExistsError, NotFoundError
from services.client.events import NORMAL, WARNING
from services.controllers.base import Controller, ControllerContext, object_key
from services.controllers.job import finished_condition
from services.controllers.podutil import OWNERSHIP_INDEXERS, controller_ref, owned, owner_reference
from services.controllers.replicaset import write_status
from services.machinery import cron

MAX_MISSED = 100
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def to_datetime(ts: Timestamp) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, dt.UTC)


def to_timestamp(moment: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(dt.UTC))
    return stamp


def unmet_time(
    schedule: cron.Schedule, earliest: dt.datetime, now: dt.datetime
) -> tuple[dt.datetime | None, int]:
    """The most recent schedule time in (earliest, now], and how many were missed."""
    latest: dt.datetime | None = None
    count = 0
    moment = schedule.next_after(earliest)
    while moment <= now:
        latest = moment
        count += 1
        if count > MAX_MISSED * 10:
            break
        moment = schedule.next_after(moment)
    return latest, count


class CronJobController(Controller):
    name = "cronjob"
    default_workers = 2

    def __init__(self, ctx: ControllerContext, clock: Clock = utc_now) -> None:
        super().__init__(ctx)
        self.clock = clock
        # Jobs created but not yet seen by the informer: still active for Forbid/Replace,
        # so a slow watch never starts a second concurrent run.
        self.unseen: dict[str, dict[str, batch_pb2.Job]] = {}
        self.cronjobs = self.informer("cronjobs")
        self.jobs = self.informer("jobs", OWNERSHIP_INDEXERS)
        self.cronjobs.add_handlers(on_add=self.enqueue_obj, on_update=lambda _o, n: self.enqueue_obj(n))
        self.jobs.add_handlers(
            on_add=self._job_event, on_update=lambda _o, n: self._job_event(n), on_delete=self._job_event
        )

    def _job_event(self, job: Message) -> None:
        ref = controller_ref(job)
        if ref is not None and ref.kind == "CronJob":
            key = f"{job.metadata.namespace}/{ref.name}"  # type: ignore[attr-defined]
            self.unseen.get(key, {}).pop(job.metadata.name, None)  # type: ignore[attr-defined]
            self.enqueue(f"{job.metadata.namespace}/{ref.name}")  # type: ignore[attr-defined]

    async def background(self) -> None:
        """A periodic pass, so a changed clock or a missed timer is noticed."""
        while True:
            await asyncio.sleep(self.settings.cronjob_sync_period)
            for cj in self.cronjobs.store.list():
                self.enqueue_obj(cj)

    def _zone(self, cj: batch_pb2.CronJob) -> dt.tzinfo:
        if cj.spec.HasField("time_zone") and cj.spec.time_zone:
            try:
                return ZoneInfo(cj.spec.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                self.recorder.event(
                    cj, WARNING, "UnknownTimeZone", f"invalid timeZone: {cj.spec.time_zone!r}"
                )
        return dt.UTC

    async def sync(self, key: str) -> None:
        cached = self.cronjobs.store.get(key)
        if not isinstance(cached, batch_pb2.CronJob):
            return
        cj = batch_pb2.CronJob()
        cj.CopyFrom(cached)
        children = [j for j in owned(self.jobs.store, cj) if isinstance(j, batch_pb2.Job)]
        status = batch_pb2.CronJobStatus()
        status.CopyFrom(cj.status)
        active = [
            j
            for j in children
            if finished_condition(j) is None and not j.metadata.HasField("deletion_timestamp")
        ]
        for job in children:
            if finished_condition(job) != "Complete" or not job.status.HasField("completion_time"):
                continue
            done = to_datetime(job.status.completion_time)
            if not status.HasField("last_successful_time") or done > to_datetime(status.last_successful_time):
                status.last_successful_time.CopyFrom(job.status.completion_time)
        await self._cleanup(cj, children)
        if not (cj.spec.HasField("suspend") and cj.spec.suspend) and not cj.metadata.HasField(
            "deletion_timestamp"
        ):
            active = await self._maybe_run(cj, status, active)
        del status.active[:]
        for job in active:
            status.active.add(
                kind="Job",
                namespace=job.metadata.namespace,
                name=job.metadata.name,
                uid=job.metadata.uid,
                api_version="batch/v1",
            )
        if status != cj.status:
            try:
                await write_status(self, cj, status)
            except NotFoundError:
                return

    async def _maybe_run(
        self, cj: batch_pb2.CronJob, status: batch_pb2.CronJobStatus, active: list[batch_pb2.Job]
    ) -> list[batch_pb2.Job]:
        try:
            schedule = cron.parse(cj.spec.schedule)
        except cron.CronError as exc:
            self.recorder.event(
                cj, WARNING, "InvalidSchedule", f"invalid schedule {cj.spec.schedule!r}: {exc}"
            )
            return active
        zone = self._zone(cj)
        now = self.clock().astimezone(zone)
        last = (
            status.last_schedule_time
            if status.HasField("last_schedule_time")
            else cj.metadata.creation_timestamp
        )
        earliest = to_datetime(last).astimezone(zone)
        deadline = (
            cj.spec.starting_deadline_seconds if cj.spec.HasField("starting_deadline_seconds") else None
        )
        if deadline is not None:
            earliest = max(earliest, now - dt.timedelta(seconds=deadline))
        scheduled, missed = unmet_time(schedule, earliest, now)
        key = object_key(cj)
        next_run = schedule.next_after(now)
        self.enqueue_after(key, max((next_run - now).total_seconds(), 0.0) + 0.05)
        if scheduled is None:
            return active
        if missed > MAX_MISSED:
            self.recorder.event(cj, WARNING, "TooManyMissedTimes", f"too many missed start times: {missed}")
        policy = cj.spec.concurrency_policy or "Allow"
        if policy == "Forbid" and active:
            return active
        if policy == "Replace":
            for job in active:
                with contextlib.suppress(NotFoundError):
                    await self.client.delete(
                        "jobs", job.metadata.name, job.metadata.namespace, propagation_policy="Background"
                    )
                self.recorder.event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {job.metadata.name}")
            active = []
        job = self._job_for(cj, scheduled)
        try:
            created = await self.client.create(job)
            self.unseen.setdefault(key, {})[created.metadata.name] = created
            self.recorder.event(cj, NORMAL, "SuccessfulCreate", f"Created job {job.metadata.name}")
            active = [*active, created]
        except AlreadyExistsError:
            pass
        status.last_schedule_time.CopyFrom(to_timestamp(scheduled))
        return active

    def _job_for(self, cj: batch_pb2.CronJob, scheduled: dt.datetime) -> batch_pb2.Job:
        template = cj.spec.job_template
        job = batch_pb2.Job()
        job.metadata.name = f"{cj.metadata.name}-{int(scheduled.timestamp() // 60)}"
        job.metadata.namespace = cj.metadata.namespace
        job.metadata.labels.update(template.metadata.labels)
        job.metadata.annotations.update(template.metadata.annotations)
        job.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] = scheduled.isoformat()
        job.metadata.owner_references.append(owner_reference(cj))
        job.spec.CopyFrom(template.spec)
        return job

    async def _cleanup(self, cj: batch_pb2.CronJob, owned: list[batch_pb2.Job]) -> None:
        limits = {
            "Complete": cj.spec.successful_jobs_history_limit
            if cj.spec.HasField("successful_jobs_history_limit")
            else 3,
            "Failed": cj.spec.failed_jobs_history_limit
            if cj.spec.HasField("failed_jobs_history_limit")
            else 1,
        }
        for kind, limit in limits.items():
            finished = [
                j
                for j in owned
                if finished_condition(j) == kind and not j.metadata.HasField("deletion_timestamp")
            ]
            finished.sort(key=lambda j: (j.metadata.creation_timestamp.seconds, j.metadata.name))
            for job in finished[: max(len(finished) - limit, 0)]:
                try:
                    await self.client.delete(
                        "jobs", job.metadata.name, job.metadata.namespace, propagation_policy="Background"
                    )
                except NotFoundError:
                    continue
