"""Validation of the controllers' kinds: ReplicationController, ReplicaSet, Deployment,
DaemonSet, StatefulSet, ControllerRevision, Job, CronJob, HorizontalPodAutoscaler and
PodDisruptionBudget."""

from __future__ import annotations

import contextlib
import re

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.autoscaling.v1 import autoscaling_pb2
from pinnace.api.batch.v1 import batch_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from pinnace.api.policy.v1 import policy_pb2
from services.machinery import cron
from services.machinery import errors as ferr
from services.machinery import labels as selectors
from services.machinery.errors import FieldError
from services.machinery.validation.common import nonnegative, positive, supported, validate_label_selector
from services.machinery.validation.pod import validate_pod_template

_PERCENT = re.compile(r"^[0-9]+%$")
# Kubernetes' maxParallelismForIndexedJob.
MAX_INDEXED_PARALLELISM = 100000


def _template_matches(
    errors: list[FieldError], selector: selectors.Selector, template: core_pb2.PodTemplateSpec, path: str
) -> None:
    if not selector.matches(template.metadata.labels):
        pairs = ",".join(f'"{k}":"{v}"' for k, v in sorted(template.metadata.labels.items()))
        errors.append(
            ferr.invalid(
                f"{path}.template.metadata.labels",
                f"map[string]string{{{pairs}}}",
                "`selector` does not match template `labels`",
            )
        )


def _validate_template(
    errors: list[FieldError],
    owner: meta_pb2.LabelSelector | None,
    template: core_pb2.PodTemplateSpec,
    path: str,
    restart_policies: tuple[str, ...] = ("Always",),
) -> None:
    errors.extend(validate_pod_template(template, f"{path}.template"))
    supported(errors, f"{path}.template.spec.restartPolicy", template.spec.restart_policy, restart_policies)
    if owner is not None:
        # A malformed selector is reported by validate_label_selector; nothing to compare then.
        with contextlib.suppress(selectors.SelectorError):
            _template_matches(errors, selectors.from_label_selector(owner), template, path)


def _validate_selector(
    errors: list[FieldError], selector: meta_pb2.LabelSelector, has: bool, path: str, what: str
) -> bool:
    if not has:
        errors.append(ferr.required(f"{path}.selector"))
        return False
    if not selector.match_labels and not selector.match_expressions:
        errors.append(ferr.invalid(f"{path}.selector", "", f"empty selector is invalid for {what}"))
        return False
    problems = validate_label_selector(selector, f"{path}.selector")
    errors.extend(problems)
    return not problems


def validate_replication_controller(rc: core_pb2.ReplicationController) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = rc.spec
    if spec.HasField("replicas"):
        nonnegative(errors, "spec.replicas", spec.replicas)
    nonnegative(errors, "spec.minReadySeconds", spec.min_ready_seconds)
    if not spec.selector:
        errors.append(ferr.required("spec.selector"))
    if not spec.HasField("template"):
        errors.append(ferr.required("spec.template"))
        return errors
    errors.extend(validate_pod_template(spec.template, "spec.template"))
    supported(errors, "spec.template.spec.restartPolicy", spec.template.spec.restart_policy, ("Always",))
    if spec.selector:
        try:
            _template_matches(errors, selectors.from_set(spec.selector), spec.template, "spec")
        except selectors.SelectorError as exc:
            errors.append(ferr.invalid("spec.selector", str(dict(spec.selector)), str(exc)))
    return errors


def _validate_replicated(
    errors: list[FieldError],
    spec: apps_pb2.ReplicaSetSpec | apps_pb2.DeploymentSpec | apps_pb2.StatefulSetSpec,
    what: str,
) -> None:
    if spec.HasField("replicas"):
        nonnegative(errors, "spec.replicas", spec.replicas)
    nonnegative(errors, "spec.minReadySeconds", spec.min_ready_seconds)
    selector_ok = _validate_selector(errors, spec.selector, spec.HasField("selector"), "spec", what)
    if not spec.HasField("template"):
        errors.append(ferr.required("spec.template"))
        return
    _validate_template(errors, spec.selector if selector_ok else None, spec.template, "spec")


def validate_replica_set(rs: apps_pb2.ReplicaSet) -> list[FieldError]:
    errors: list[FieldError] = []
    _validate_replicated(errors, rs.spec, "replicaset")
    return errors


def _int_or_percent(
    errors: list[FieldError], value: meta_pb2.IntOrString, path: str, *, at_most_100: bool
) -> int:
    """Validate an IntOrString that is a count or "N%"; return its number (0 when unset or bad)."""
    which = value.WhichOneof("value")
    if which == "int_val":
        nonnegative(errors, path, value.int_val)
        return value.int_val
    if which == "str_val":
        if not _PERCENT.match(value.str_val):
            errors.append(
                ferr.invalid(
                    path,
                    value.str_val,
                    "a valid percent string must be a numeric string "
                    "followed by an ending '%' (e.g. '1%',  or '93%')",
                )
            )
            return 0
        percent = int(value.str_val[:-1])
        if at_most_100 and percent > 100:
            errors.append(ferr.invalid(path, value.str_val, "must not be greater than 100%"))
        return percent
    return 0


def _validate_surge_pair(
    errors: list[FieldError], surge: meta_pb2.IntOrString, unavailable: meta_pb2.IntOrString, path: str
) -> None:
    max_surge = _int_or_percent(errors, surge, f"{path}.maxSurge", at_most_100=False)
    max_unavailable = _int_or_percent(errors, unavailable, f"{path}.maxUnavailable", at_most_100=True)
    if max_surge == 0 and max_unavailable == 0:
        errors.append(ferr.invalid(f"{path}.maxUnavailable", 0, "may not be 0 when `maxSurge` is 0"))


def validate_deployment(deployment: apps_pb2.Deployment) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = deployment.spec
    _validate_replicated(errors, spec, "deployment")
    strategy = spec.strategy
    supported(errors, "spec.strategy.type", strategy.type, ("Recreate", "RollingUpdate"))
    if strategy.type == "Recreate" and strategy.HasField("rolling_update"):
        errors.append(
            ferr.forbidden(
                "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
            )
        )
    if strategy.type == "RollingUpdate":
        _validate_surge_pair(
            errors,
            strategy.rolling_update.max_surge,
            strategy.rolling_update.max_unavailable,
            "spec.strategy.rollingUpdate",
        )
    if spec.HasField("revision_history_limit"):
        nonnegative(errors, "spec.revisionHistoryLimit", spec.revision_history_limit)
    if spec.HasField("progress_deadline_seconds"):
        positive(errors, "spec.progressDeadlineSeconds", spec.progress_deadline_seconds)
        if spec.progress_deadline_seconds <= spec.min_ready_seconds:
            errors.append(
                ferr.invalid(
                    "spec.progressDeadlineSeconds",
                    spec.progress_deadline_seconds,
                    "must be greater than minReadySeconds",
                )
            )
    return errors


def validate_daemon_set(ds: apps_pb2.DaemonSet) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = ds.spec
    selector_ok = _validate_selector(errors, spec.selector, spec.HasField("selector"), "spec", "daemonset")
    if not spec.HasField("template"):
        errors.append(ferr.required("spec.template"))
    else:
        _validate_template(errors, spec.selector if selector_ok else None, spec.template, "spec")
    strategy = spec.update_strategy
    supported(errors, "spec.updateStrategy.type", strategy.type, ("OnDelete", "RollingUpdate"))
    if strategy.type == "RollingUpdate":
        _validate_surge_pair(
            errors,
            strategy.rolling_update.max_surge,
            strategy.rolling_update.max_unavailable,
            "spec.updateStrategy.rollingUpdate",
        )
    nonnegative(errors, "spec.minReadySeconds", spec.min_ready_seconds)
    return errors


def _with_claim_volumes(spec: apps_pb2.StatefulSetSpec) -> apps_pb2.StatefulSetSpec:
    """The spec as its pods will be: the controller gives each pod a volume per claim template,
    so the template's volumeMounts may name the claims (Kubernetes does not check them at all)."""
    pods_view = apps_pb2.StatefulSetSpec()
    pods_view.CopyFrom(spec)
    declared = {v.name for v in spec.template.spec.volumes}
    for claim in spec.volume_claim_templates:
        if claim.metadata.name and claim.metadata.name not in declared:
            volume = pods_view.template.spec.volumes.add(name=claim.metadata.name)
            volume.persistent_volume_claim.claim_name = claim.metadata.name
    return pods_view


def validate_stateful_set(sts: apps_pb2.StatefulSet) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = sts.spec
    _validate_replicated(errors, _with_claim_volumes(spec), "statefulset")
    supported(errors, "spec.podManagementPolicy", spec.pod_management_policy, ("OrderedReady", "Parallel"))
    supported(errors, "spec.updateStrategy.type", spec.update_strategy.type, ("OnDelete", "RollingUpdate"))
    rolling = spec.update_strategy.rolling_update
    if rolling.HasField("partition"):
        nonnegative(errors, "spec.updateStrategy.rollingUpdate.partition", rolling.partition)
    for i, claim in enumerate(spec.volume_claim_templates):
        path = f"spec.volumeClaimTemplates[{i}]"
        if not claim.metadata.name:
            errors.append(ferr.required(f"{path}.metadata.name"))
        if not claim.spec.access_modes:
            errors.append(ferr.required(f"{path}.spec.accessModes", "at least 1 access mode is required"))
    return errors


def _validate_job_spec(
    errors: list[FieldError], spec: batch_pb2.JobSpec, path: str, *, generated: bool
) -> None:
    for field, name in (
        ("parallelism", "parallelism"),
        ("completions", "completions"),
        ("backoff_limit", "backoffLimit"),
        ("ttl_seconds_after_finished", "ttlSecondsAfterFinished"),
    ):
        if spec.HasField(field):
            nonnegative(errors, f"{path}.{name}", getattr(spec, field))
    if spec.HasField("active_deadline_seconds"):
        positive(errors, f"{path}.activeDeadlineSeconds", spec.active_deadline_seconds)
    if spec.HasField("completion_mode"):
        supported(errors, f"{path}.completionMode", spec.completion_mode, ("Indexed", "NonIndexed"))
    if spec.completion_mode == "Indexed":
        if not spec.HasField("completions"):
            errors.append(ferr.required(f"{path}.completions", "when completion mode is Indexed"))
        if spec.HasField("parallelism") and spec.parallelism > MAX_INDEXED_PARALLELISM:
            errors.append(
                ferr.invalid(
                    f"{path}.parallelism",
                    spec.parallelism,
                    f"must be less than or equal to {MAX_INDEXED_PARALLELISM} "
                    "when completion mode is Indexed",
                )
            )
    if not spec.HasField("template"):
        errors.append(ferr.required(f"{path}.template"))
        return
    owner = spec.selector if spec.HasField("selector") and not generated else None
    if owner is not None:
        errors.extend(validate_label_selector(owner, f"{path}.selector"))
    _validate_template(errors, owner, spec.template, path, restart_policies=("OnFailure", "Never"))


def validate_job(job: batch_pb2.Job) -> list[FieldError]:
    errors: list[FieldError] = []
    _validate_job_spec(errors, job.spec, "spec", generated=not job.spec.manual_selector)
    return errors


def validate_cron_job(cj: batch_pb2.CronJob) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = cj.spec
    if len(cj.metadata.name) > 52:
        errors.append(ferr.invalid("metadata.name", cj.metadata.name, "must be no more than 52 characters"))
    if not spec.schedule:
        errors.append(ferr.required("spec.schedule"))
    else:
        try:
            cron.parse(spec.schedule)
        except cron.CronError as exc:
            errors.append(ferr.invalid("spec.schedule", spec.schedule, str(exc)))
    supported(errors, "spec.concurrencyPolicy", spec.concurrency_policy, ("Allow", "Forbid", "Replace"))
    if spec.HasField("starting_deadline_seconds"):
        nonnegative(errors, "spec.startingDeadlineSeconds", spec.starting_deadline_seconds)
    for field, name in (
        ("successful_jobs_history_limit", "successfulJobsHistoryLimit"),
        ("failed_jobs_history_limit", "failedJobsHistoryLimit"),
    ):
        if spec.HasField(field):
            nonnegative(errors, f"spec.{name}", getattr(spec, field))
    _validate_job_spec(errors, spec.job_template.spec, "spec.jobTemplate.spec", generated=True)
    return errors


def validate_hpa(hpa: autoscaling_pb2.HorizontalPodAutoscaler) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = hpa.spec
    ref = spec.scale_target_ref
    if not ref.kind:
        errors.append(ferr.required("spec.scaleTargetRef.kind"))
    if not ref.name:
        errors.append(ferr.required("spec.scaleTargetRef.name"))
    minimum = spec.min_replicas if spec.HasField("min_replicas") else 1
    if minimum < 1:
        errors.append(ferr.invalid("spec.minReplicas", minimum, "must be greater than or equal to 1"))
    if spec.max_replicas < minimum:
        errors.append(
            ferr.invalid(
                "spec.maxReplicas", spec.max_replicas, "must be greater than or equal to `minReplicas`"
            )
        )
    if spec.HasField("target_cpu_utilization_percentage"):
        positive(errors, "spec.targetCPUUtilizationPercentage", spec.target_cpu_utilization_percentage)
    return errors


def validate_controller_revision(revision: apps_pb2.ControllerRevision) -> list[FieldError]:
    errors: list[FieldError] = []
    if not revision.HasField("data"):
        errors.append(ferr.required("data", "data is mandatory"))
    nonnegative(errors, "revision", revision.revision)
    return errors


def validate_pod_disruption_budget(pdb: policy_pb2.PodDisruptionBudget) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = pdb.spec
    if spec.HasField("min_available") and spec.HasField("max_unavailable"):
        errors.append(ferr.invalid("spec", "", "minAvailable and maxUnavailable cannot be both set"))
    if spec.HasField("min_available"):
        _int_or_percent(errors, spec.min_available, "spec.minAvailable", at_most_100=True)
    if spec.HasField("max_unavailable"):
        _int_or_percent(errors, spec.max_unavailable, "spec.maxUnavailable", at_most_100=True)
    if spec.HasField("selector"):
        errors.extend(validate_label_selector(spec.selector, "spec.selector"))
    if spec.HasField("unhealthy_pod_eviction_policy"):
        supported(
            errors,
            "spec.unhealthyPodEvictionPolicy",
            spec.unhealthy_pod_eviction_policy,
            ("AlwaysAllow", "IfHealthyBudget"),
        )
    return errors
