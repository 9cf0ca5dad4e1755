"""Jobs: run pods until `completions` of them succeed, at most `parallelism` at a time.

- Without completions (a work queue), the Job is complete once any pod has succeeded and
  none is still running.
- Failures (failed pods, plus container restarts under restartPolicy OnFailure) beyond
  backoffLimit fail the Job (BackoffLimitExceeded); replacements after a failure wait an
  exponential back-off (10 s doubling, capped at 6 min; configurable).
- activeDeadlineSeconds, counted from status.startTime, fails the Job (DeadlineExceeded).
- A finished Job deletes its remaining active pods and keeps Complete/Failed conditions.
- suspend deletes the active pods and sets the Suspended condition.
- completionMode Indexed (indexed_job.py): each index 0..completions-1 must succeed once; a
  pod per index still to do, lowest first, at most parallelism at a time; status
  completedIndexes; stray pods (no valid index, an index done, a second pod for an index)
  are deleted.
Pods carry the controller-uid and job-name labels and a controller reference; creations and
deletions go through expectations as the ReplicaSet controller's do."""

from __future__ import annotations

import asyncio
import time

from google.protobuf.message import Message

from pinnace.api.batch.v1 import batch_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.errors import APIStatusError, NotFoundError
from services.client.events import NORMAL, WARNING
from services.controllers import indexed_job
from services.controllers.base import Controller, ControllerContext, object_key
from services.controllers.expectations import Expectations
from services.controllers.podutil import (
    OWNERSHIP_INDEXERS,
    controller_ref,
    is_active,
    is_ready,
    least_valuable,
    now_ts,
    owned,
    pod_from_template,
    restarts,
    seconds,
)
from services.controllers.replicaset import write_status

CONTROLLER_UID = "controller-uid"
JOB_NAME = "job-name"


def finished_condition(job: batch_pb2.Job) -> str | None:
    for condition in job.status.conditions:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition.type
    return None


class JobController(Controller):
    name = "job"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.jobs = self.informer("jobs")
        self.pods = self.informer("pods", OWNERSHIP_INDEXERS)
        self.jobs.add_handlers(
            on_add=self.enqueue_obj, on_update=lambda _o, n: self.enqueue_obj(n), on_delete=self._job_deleted
        )
        self.pods.add_handlers(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
        )
        self.last_failure: dict[str, tuple[int, float]] = {}

    def _job_deleted(self, job: Message) -> None:
        self.expectations.forget(object_key(job))

    def _owner(self, pod: Message) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.kind != "Job":
            return None
        key = f"{pod.metadata.namespace}/{ref.name}"  # type: ignore[attr-defined]
        job = self.jobs.store.get(key)
        return key if job is not None and job.metadata.uid == ref.uid else None  # type: ignore[attr-defined]

    def _pod_added(self, pod: Message) -> None:
        key = self._owner(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)

    def _pod_updated(self, old: Message, new: Message) -> None:
        key = self._owner(new)
        if key is None:
            return
        if new.metadata.HasField("deletion_timestamp") and not old.metadata.HasField("deletion_timestamp"):  # type: ignore[attr-defined]
            self.expectations.deletion_observed(key, object_key(new))
        self.enqueue(key)

    def _pod_deleted(self, pod: Message) -> None:
        key = self._owner(pod)
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))
            self.enqueue(key)

    def _pods_of(self, job: batch_pb2.Job) -> list[core_pb2.Pod]:
        pods = []
        for pod in owned(self.pods.store, job):
            ref = controller_ref(pod)
            if isinstance(pod, core_pb2.Pod) and ref is not None and ref.uid == job.metadata.uid:
                pods.append(pod)
        return pods

    async def sync(self, key: str) -> None:
        cached = self.jobs.store.get(key)
        if not isinstance(cached, batch_pb2.Job):
            return
        job = batch_pb2.Job()
        job.CopyFrom(cached)
        if finished_condition(job) is not None:
            return
        pods = self._pods_of(job)
        active = [p for p in pods if is_active(p)]
        indexed = indexed_job.is_indexed(job) and job.spec.HasField("completions")
        done: set[int] = set()
        if indexed:
            done = indexed_job.completed(job, pods, job.spec.completions)
            succeeded = len(done)
        else:
            succeeded = sum(1 for p in pods if p.status.phase == "Succeeded")
        failed_pods = sum(1 for p in pods if p.status.phase == "Failed")
        failed = max(failed_pods, job.status.failed)
        status = batch_pb2.JobStatus()
        status.CopyFrom(job.status)
        now = time.time()
        if not status.HasField("start_time") and not job.spec.suspend:
            status.start_time.CopyFrom(now_ts())
        spec = job.spec
        completions = spec.completions if spec.HasField("completions") else None
        restart_failures = (
            sum(restarts(p) for p in pods) if spec.template.spec.restart_policy == "OnFailure" else 0
        )
        verdict: tuple[str, str, str] | None = None
        if failed + restart_failures > spec.backoff_limit:
            verdict = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif (
            spec.HasField("active_deadline_seconds")
            and status.HasField("start_time")
            and now - seconds(status.start_time) >= spec.active_deadline_seconds
        ):
            verdict = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        elif (completions is not None and succeeded >= completions) or (
            completions is None and succeeded > 0 and not active
        ):
            verdict = ("Complete", "", "")
        error: Exception | None = None
        if verdict is not None or spec.suspend:
            await self._delete_pods(key, job, active)
            active = []
        elif self.expectations.satisfied(key):
            try:
                if indexed:
                    active = await self._manage_indexed(key, job, active, done, failed)
                else:
                    active = await self._manage(key, job, active, succeeded, failed, completions)
            except APIStatusError as exc:
                error = exc
        status.active = len(active)
        status.ready = sum(1 for p in active if is_ready(p))
        status.succeeded = succeeded
        status.failed = failed
        if indexed:
            status.completed_indexes = indexed_job.format_intervals(done)
        self._set_conditions(job, status, verdict)
        if status != job.status:
            try:
                await write_status(self, job, status)
            except NotFoundError:
                return
        if verdict is None and spec.HasField("active_deadline_seconds") and status.HasField("start_time"):
            remaining = seconds(status.start_time) + spec.active_deadline_seconds - now
            self.enqueue_after(key, max(remaining, 0.0) + 0.05)
        if error is not None:
            raise error

    def _set_conditions(
        self, job: batch_pb2.Job, status: batch_pb2.JobStatus, verdict: tuple[str, str, str] | None
    ) -> None:
        suspended = job.spec.suspend and verdict is None
        existing = {c.type: c for c in status.conditions}
        if verdict is not None:
            ctype, reason, message = verdict
            condition = status.conditions.add(type=ctype, status="True", reason=reason, message=message)
            condition.last_probe_time.CopyFrom(now_ts())
            condition.last_transition_time.CopyFrom(now_ts())
            if ctype == "Complete":
                status.completion_time.CopyFrom(now_ts())
                self.recorder.event(job, NORMAL, "Completed", "Job completed")
            else:
                self.recorder.event(job, WARNING, reason, message)
            return
        previous = existing.get("Suspended")
        wanted = "True" if suspended else "False"
        if previous is None and not suspended:
            return
        if previous is not None and previous.status == wanted:
            return
        kept = [c for c in status.conditions if c.type != "Suspended"]
        del status.conditions[:]
        status.conditions.extend(kept)
        condition = status.conditions.add(
            type="Suspended",
            status=wanted,
            reason="JobSuspended" if suspended else "JobResumed",
            message="Job suspended" if suspended else "Job resumed",
        )
        condition.last_transition_time.CopyFrom(now_ts())
        if not suspended:
            status.start_time.CopyFrom(now_ts())

    async def _manage(
        self,
        key: str,
        job: batch_pb2.Job,
        active: list[core_pb2.Pod],
        succeeded: int,
        failed: int,
        completions: int | None,
    ) -> list[core_pb2.Pod]:
        parallelism = job.spec.parallelism
        if completions is None:
            wanted = parallelism if succeeded == 0 else 0
        else:
            wanted = min(parallelism, max(completions - succeeded, 0))
        if len(active) > wanted:
            victims = least_valuable(active, len(active) - wanted)
            await self._delete_pods(key, job, victims)
            return [p for p in active if p not in victims]
        missing = wanted - len(active)
        if missing <= 0:
            return active
        delay = self._backoff_remaining(key, failed)
        if delay > 0:
            self.enqueue_after(key, delay)
            return active
        missing = min(missing, self.settings.burst_replicas)
        extra = {CONTROLLER_UID: job.metadata.uid, JOB_NAME: job.metadata.name}
        await self._create_pods(
            key, job, [pod_from_template(job.spec.template, job, extra_labels=extra) for _ in range(missing)]
        )
        return active

    async def _manage_indexed(
        self, key: str, job: batch_pb2.Job, active: list[core_pb2.Pod], done: set[int], failed: int
    ) -> list[core_pb2.Pod]:
        completions = job.spec.completions
        running, extra = indexed_job.split_active(active, completions, done)
        wanted = min(job.spec.parallelism, max(completions - len(done), 0))
        survivors = list(running.values())
        if len(survivors) > wanted:
            extra.extend(least_valuable(survivors, len(survivors) - wanted))
        if extra:
            await self._delete_pods(key, job, extra)
            return [p for p in survivors if p not in extra]
        missing = wanted - len(survivors)
        if missing <= 0:
            return survivors
        delay = self._backoff_remaining(key, failed)
        if delay > 0:
            self.enqueue_after(key, delay)
            return survivors
        indexes = indexed_job.pending(
            completions, done, set(running), min(missing, self.settings.burst_replicas)
        )
        await self._create_pods(key, job, [self._indexed_pod(job, i) for i in indexes])
        return survivors

    def _indexed_pod(self, job: batch_pb2.Job, index: int) -> core_pb2.Pod:
        extra = {CONTROLLER_UID: job.metadata.uid, JOB_NAME: job.metadata.name}
        pod = pod_from_template(job.spec.template, job, extra_labels=extra)
        indexed_job.decorate(pod, job.metadata.name, index)
        return pod

    async def _create_pods(self, key: str, job: batch_pb2.Job, pods: list[core_pb2.Pod]) -> None:
        self.expectations.expect_creations(key, len(pods))
        results = await asyncio.gather(*(self.client.create(p) for p in pods), return_exceptions=True)
        failures = [r for r in results if isinstance(r, Exception)]
        for _ in failures:
            self.expectations.creation_observed(key)
        if failures:
            self.recorder.event(job, WARNING, "FailedCreate", f"Error creating: {failures[0]}")
            raise failures[0]
        self.recorder.event(job, NORMAL, "SuccessfulCreate", f"Created {len(pods)} pod(s)")

    def _backoff_remaining(self, key: str, failed: int) -> float:
        """Replacements after new failures wait base * 2^(failures-1), capped."""
        if failed == 0 or self.settings.job_backoff_seconds <= 0:
            return 0.0
        seen, since = self.last_failure.get(key, (0, 0.0))
        now = time.monotonic()
        if failed != seen:
            self.last_failure[key] = (failed, now)
            since = now
        delay = min(
            self.settings.job_backoff_seconds * 2 ** (failed - 1), self.settings.job_backoff_max_seconds
        )
        return float(max(since + delay - now, 0.0))

    async def _delete_pods(self, key: str, job: batch_pb2.Job, pods: list[core_pb2.Pod]) -> None:
        if not pods:
            return
        self.expectations.expect_deletions(key, [object_key(p) for p in pods])
        for pod in pods:
            try:
                await self.client.delete(
                    "pods", pod.metadata.name, pod.metadata.namespace, uid=pod.metadata.uid
                )
            except NotFoundError:
                self.expectations.deletion_observed(key, object_key(pod))
        self.recorder.event(job, NORMAL, "SuccessfulDelete", f"Deleted {len(pods)} pod(s)")
