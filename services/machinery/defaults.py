"""Defaulting, applied before validation exactly where Kubernetes applies it (SetDefaults_*),
so a manifest that omits `restartPolicy` or `strategy` reads back as Kubernetes would show it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.autoscaling.v1 import autoscaling_pb2
from pinnace.api.batch.v1 import batch_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from pinnace.api.scheduling.v1 import scheduling_pb2
from pinnace.api.storage.v1 import storage_pb2

DEFAULT_SCHEDULER = "default-scheduler"
DEFAULT_TERMINATION_GRACE_SECONDS = 30
DEFAULT_CLIENT_IP_TIMEOUT = 10800
DEFAULT_REVISION_HISTORY = 10
DEFAULT_PROGRESS_DEADLINE = 600
DEFAULT_BACKOFF_LIMIT = 6


def _image_pull_policy(image: str) -> str:
    """Always for ':latest' or an untagged image, IfNotPresent otherwise (digests count as tags)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_probe(probe: core_pb2.Probe) -> None:
    probe.timeout_seconds = probe.timeout_seconds or 1
    probe.period_seconds = probe.period_seconds or 10
    probe.success_threshold = probe.success_threshold or 1
    probe.failure_threshold = probe.failure_threshold or 3
    if probe.HasField("http_get"):
        probe.http_get.path = probe.http_get.path or "/"
        probe.http_get.scheme = probe.http_get.scheme or "HTTP"


def _default_container(c: core_pb2.Container) -> None:
    c.image_pull_policy = c.image_pull_policy or _image_pull_policy(c.image)
    c.termination_message_path = c.termination_message_path or "/dev/termination-log"
    c.termination_message_policy = c.termination_message_policy or "File"
    for port in c.ports:
        port.protocol = port.protocol or "TCP"
    for env in c.env:
        if env.value_from.HasField("field_ref"):
            env.value_from.field_ref.api_version = env.value_from.field_ref.api_version or "v1"
    for name in ("liveness_probe", "readiness_probe", "startup_probe"):
        if c.HasField(name):
            _default_probe(getattr(c, name))
    for handler in (c.lifecycle.post_start, c.lifecycle.pre_stop):
        if handler.HasField("http_get"):
            handler.http_get.path = handler.http_get.path or "/"
            handler.http_get.scheme = handler.http_get.scheme or "HTTP"


def _default_projected(source: core_pb2.ProjectedVolumeSource) -> None:
    if not source.HasField("default_mode"):
        source.default_mode = 0o644
    for projection in source.sources:
        token = projection.service_account_token
        if projection.HasField("service_account_token") and not token.HasField("expiration_seconds"):
            token.expiration_seconds = 3600
        for item in projection.downward_api.items:
            if item.HasField("field_ref"):
                item.field_ref.api_version = item.field_ref.api_version or "v1"


def default_pod_spec(spec: core_pb2.PodSpec) -> None:
    spec.restart_policy = spec.restart_policy or "Always"
    spec.dns_policy = spec.dns_policy or "ClusterFirst"
    spec.scheduler_name = spec.scheduler_name or DEFAULT_SCHEDULER
    if not spec.HasField("termination_grace_period_seconds"):
        spec.termination_grace_period_seconds = DEFAULT_TERMINATION_GRACE_SECONDS
    if not spec.HasField("enable_service_links"):
        spec.enable_service_links = True
    spec.security_context.SetInParent()
    # serviceAccount is the deprecated alias of serviceAccountName; keep them in step.
    if spec.service_account and not spec.service_account_name:
        spec.service_account_name = spec.service_account
    for c in (*spec.init_containers, *spec.containers):
        _default_container(c)
    for volume in spec.volumes:
        if volume.HasField("secret") and not volume.secret.HasField("default_mode"):
            volume.secret.default_mode = 0o644
        if volume.HasField("config_map") and not volume.config_map.HasField("default_mode"):
            volume.config_map.default_mode = 0o644
        if volume.HasField("downward_api") and not volume.downward_api.HasField("default_mode"):
            volume.downward_api.default_mode = 0o644
        if volume.HasField("host_path") and not volume.host_path.HasField("type"):
            volume.host_path.type = ""
        for item in volume.downward_api.items:
            if item.HasField("field_ref"):
                item.field_ref.api_version = item.field_ref.api_version or "v1"
        if volume.HasField("projected"):
            _default_projected(volume.projected)
    for toleration in spec.tolerations:
        if not toleration.operator:
            toleration.operator = "Equal"


def _default_pod(pod: core_pb2.Pod) -> None:
    default_pod_spec(pod.spec)


def _default_template(template: core_pb2.PodTemplateSpec) -> None:
    default_pod_spec(template.spec)


def _default_service(svc: core_pb2.Service) -> None:
    spec = svc.spec
    spec.type = spec.type or "ClusterIP"
    spec.session_affinity = spec.session_affinity or "None"
    if spec.session_affinity == "ClientIP" and not spec.session_affinity_config.client_ip.HasField(
        "timeout_seconds"
    ):
        spec.session_affinity_config.client_ip.timeout_seconds = DEFAULT_CLIENT_IP_TIMEOUT
    for port in spec.ports:
        port.protocol = port.protocol or "TCP"
        if port.target_port.WhichOneof("value") is None:
            port.target_port.int_val = port.port
    if spec.type in ("NodePort", "LoadBalancer") and not spec.external_traffic_policy:
        spec.external_traffic_policy = "Cluster"
    if spec.type != "ExternalName" and not spec.HasField("internal_traffic_policy"):
        spec.internal_traffic_policy = "Cluster"


def _default_endpoints(endpoints: core_pb2.Endpoints) -> None:
    for subset in endpoints.subsets:
        for port in subset.ports:
            port.protocol = port.protocol or "TCP"


def _default_rc(rc: core_pb2.ReplicationController) -> None:
    spec = rc.spec
    if not spec.HasField("replicas"):
        spec.replicas = 1
    if spec.HasField("template"):
        labels = spec.template.metadata.labels
        if not spec.selector:
            spec.selector.update(labels)
        if not rc.metadata.labels:
            rc.metadata.labels.update(labels)
        _default_template(spec.template)


def _default_replica_set(rs: apps_pb2.ReplicaSet) -> None:
    if not rs.spec.HasField("replicas"):
        rs.spec.replicas = 1
    _default_template(rs.spec.template)


def _percent(value: str) -> meta_pb2.IntOrString:
    return meta_pb2.IntOrString(str_val=value)


def _default_deployment(d: apps_pb2.Deployment) -> None:
    spec = d.spec
    if not spec.HasField("replicas"):
        spec.replicas = 1
    spec.strategy.type = spec.strategy.type or "RollingUpdate"
    if spec.strategy.type == "RollingUpdate":
        rolling = spec.strategy.rolling_update
        if not rolling.HasField("max_unavailable"):
            rolling.max_unavailable.CopyFrom(_percent("25%"))
        if not rolling.HasField("max_surge"):
            rolling.max_surge.CopyFrom(_percent("25%"))
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = DEFAULT_REVISION_HISTORY
    if not spec.HasField("progress_deadline_seconds"):
        spec.progress_deadline_seconds = DEFAULT_PROGRESS_DEADLINE
    _default_template(spec.template)


def _default_daemon_set(ds: apps_pb2.DaemonSet) -> None:
    spec = ds.spec
    spec.update_strategy.type = spec.update_strategy.type or "RollingUpdate"
    if spec.update_strategy.type == "RollingUpdate":
        rolling = spec.update_strategy.rolling_update
        if not rolling.HasField("max_unavailable"):
            rolling.max_unavailable.int_val = 1
        if not rolling.HasField("max_surge"):
            rolling.max_surge.int_val = 0
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = DEFAULT_REVISION_HISTORY
    _default_template(spec.template)


def _default_stateful_set(sts: apps_pb2.StatefulSet) -> None:
    spec = sts.spec
    if not spec.HasField("replicas"):
        spec.replicas = 1
    spec.pod_management_policy = spec.pod_management_policy or "OrderedReady"
    spec.update_strategy.type = spec.update_strategy.type or "RollingUpdate"
    if spec.update_strategy.type == "RollingUpdate" and not spec.update_strategy.rolling_update.HasField(
        "partition"
    ):
        spec.update_strategy.rolling_update.partition = 0
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = DEFAULT_REVISION_HISTORY
    for claim in spec.volume_claim_templates:
        _default_pvc(claim)
    _default_template(spec.template)


def _default_job_spec(spec: batch_pb2.JobSpec) -> None:
    if not spec.HasField("completions") and not spec.HasField("parallelism"):
        spec.completions = 1
        spec.parallelism = 1
    if not spec.HasField("parallelism"):
        spec.parallelism = 1
    if not spec.HasField("backoff_limit"):
        spec.backoff_limit = DEFAULT_BACKOFF_LIMIT
    if not spec.HasField("completion_mode"):
        spec.completion_mode = "NonIndexed"
    if not spec.HasField("suspend"):
        spec.suspend = False
    _default_template(spec.template)


def _default_job(job: batch_pb2.Job) -> None:
    _default_job_spec(job.spec)


def _default_cron_job(cj: batch_pb2.CronJob) -> None:
    spec = cj.spec
    spec.concurrency_policy = spec.concurrency_policy or "Allow"
    if not spec.HasField("suspend"):
        spec.suspend = False
    if not spec.HasField("successful_jobs_history_limit"):
        spec.successful_jobs_history_limit = 3
    if not spec.HasField("failed_jobs_history_limit"):
        spec.failed_jobs_history_limit = 1
    _default_job_spec(spec.job_template.spec)


def _default_hpa(hpa: autoscaling_pb2.HorizontalPodAutoscaler) -> None:
    if not hpa.spec.HasField("min_replicas"):
        hpa.spec.min_replicas = 1


def _default_secret(secret: core_pb2.Secret) -> None:
    secret.type = secret.type or "Opaque"
    # stringData is write-only: it merges into data (winning over it) and is never stored.
    for key, value in secret.string_data.items():
        secret.data[key] = value.encode()
    secret.ClearField("string_data")


def _default_pv(pv: core_pb2.PersistentVolume) -> None:
    pv.spec.persistent_volume_reclaim_policy = pv.spec.persistent_volume_reclaim_policy or "Retain"
    if not pv.spec.HasField("volume_mode"):
        pv.spec.volume_mode = "Filesystem"
    pv.status.phase = pv.status.phase or "Pending"


def _default_pvc(pvc: core_pb2.PersistentVolumeClaim) -> None:
    if not pvc.spec.HasField("volume_mode"):
        pvc.spec.volume_mode = "Filesystem"
    pvc.status.phase = pvc.status.phase or "Pending"


def _default_limit_range(lr: core_pb2.LimitRange) -> None:
    for item in lr.spec.limits:
        if item.type != "Container":
            continue
        # A max implies a default limit, and a default limit implies a default request.
        for resource, value in item.max.items():
            item.default.setdefault(resource, value)
        for resource, value in item.default.items():
            item.default_request.setdefault(resource, value)


def _default_priority_class(pc: scheduling_pb2.PriorityClass) -> None:
    if not pc.HasField("preemption_policy"):
        pc.preemption_policy = "PreemptLowerPriority"


def _default_storage_class(sc: storage_pb2.StorageClass) -> None:
    if not sc.HasField("reclaim_policy"):
        sc.reclaim_policy = "Delete"
    if not sc.HasField("volume_binding_mode"):
        sc.volume_binding_mode = "Immediate"


_DEFAULTERS: dict[type[Message], Callable[[Any], None]] = {
    core_pb2.Pod: _default_pod,
    core_pb2.Service: _default_service,
    core_pb2.Endpoints: _default_endpoints,
    core_pb2.ReplicationController: _default_rc,
    core_pb2.Secret: _default_secret,
    core_pb2.PersistentVolume: _default_pv,
    core_pb2.PersistentVolumeClaim: _default_pvc,
    core_pb2.LimitRange: _default_limit_range,
    apps_pb2.ReplicaSet: _default_replica_set,
    apps_pb2.Deployment: _default_deployment,
    apps_pb2.DaemonSet: _default_daemon_set,
    apps_pb2.StatefulSet: _default_stateful_set,
    batch_pb2.Job: _default_job,
    batch_pb2.CronJob: _default_cron_job,
    autoscaling_pb2.HorizontalPodAutoscaler: _default_hpa,
    scheduling_pb2.PriorityClass: _default_priority_class,
    storage_pb2.StorageClass: _default_storage_class,
}


def apply_defaults(obj: Message) -> Message:
    """Fill in Kubernetes' defaults in place; returns the object for chaining."""
    defaulter = _DEFAULTERS.get(type(obj))
    if defaulter is not None:
        defaulter(obj)
    return obj
