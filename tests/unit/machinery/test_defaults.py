from services.machinery import codec
from services.machinery.defaults import apply_defaults


def _load(text: str):
    return apply_defaults(codec.from_yaml(text))


def test_pod_defaults_match_kubernetes() -> None:
    pod = _load("""
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - {name: a, image: "pinnace/busybox", ports: [{containerPort: 80}], readinessProbe: {httpGet: {port: 80}}}
  - {name: b, image: "pinnace/busybox:1.0"}
""")
    spec = pod.spec
    assert (spec.restart_policy, spec.dns_policy, spec.scheduler_name) == (
        "Always",
        "ClusterFirst",
        "default-scheduler",
    )
    assert spec.termination_grace_period_seconds == 30
    assert spec.enable_service_links is True
    a, b = spec.containers
    assert a.image_pull_policy == "Always" and b.image_pull_policy == "IfNotPresent"
    assert a.ports[0].protocol == "TCP"
    assert a.termination_message_path == "/dev/termination-log"
    probe = a.readiness_probe
    assert (
        probe.timeout_seconds,
        probe.period_seconds,
        probe.success_threshold,
        probe.failure_threshold,
    ) == (1, 10, 1, 3)
    assert probe.http_get.path == "/" and probe.http_get.scheme == "HTTP"


def test_service_defaults() -> None:
    svc = _load("""
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  type: NodePort
  sessionAffinity: ClientIP
  ports: [{port: 80}]
""")
    assert svc.spec.ports[0].target_port.int_val == 80
    assert svc.spec.ports[0].protocol == "TCP"
    assert svc.spec.external_traffic_policy == "Cluster"
    assert svc.spec.session_affinity_config.client_ip.timeout_seconds == 10800


def test_rc_selector_and_labels_default_from_template() -> None:
    rc = _load("""
apiVersion: v1
kind: ReplicationController
metadata: {name: r}
spec:
  template:
    metadata: {labels: {app: r}}
    spec: {containers: [{name: a, image: x:1}]}
""")
    assert rc.spec.replicas == 1
    assert dict(rc.spec.selector) == {"app": "r"}
    assert dict(rc.metadata.labels) == {"app": "r"}


def test_deployment_defaults() -> None:
    d = _load("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: d}}
  template: {metadata: {labels: {app: d}}, spec: {containers: [{name: a, image: x:1}]}}
""")
    assert d.spec.replicas == 1
    assert d.spec.strategy.type == "RollingUpdate"
    assert d.spec.strategy.rolling_update.max_surge.str_val == "25%"
    assert d.spec.strategy.rolling_update.max_unavailable.str_val == "25%"
    assert (d.spec.revision_history_limit, d.spec.progress_deadline_seconds) == (10, 600)


def test_job_and_cronjob_defaults() -> None:
    job = _load("""
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: a, image: x:1}]}}}
""")
    assert (job.spec.completions, job.spec.parallelism, job.spec.backoff_limit) == (1, 1, 6)
    cj = _load("""
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "@hourly"
  jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: a, image: x:1}]}}}}
""")
    assert cj.spec.concurrency_policy == "Allow"
    assert (cj.spec.successful_jobs_history_limit, cj.spec.failed_jobs_history_limit) == (3, 1)


def test_secret_string_data_merges_into_data() -> None:
    secret = _load("""
apiVersion: v1
kind: Secret
metadata: {name: s}
data: {a: YQ==, b: Yg==}
stringData: {b: override, c: new}
""")
    assert dict(secret.data) == {"a": b"a", "b": b"override", "c": b"new"}
    assert not secret.string_data
    assert secret.type == "Opaque"


def test_storage_defaults() -> None:
    pv = _load("""
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv}
spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/pv}}
""")
    assert pv.spec.persistent_volume_reclaim_policy == "Retain"
