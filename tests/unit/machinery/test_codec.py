import base64

import pytest

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.machinery import codec
from services.machinery.codec import ManifestError

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
  labels: {app: web}
  creationTimestamp: "2024-05-06T07:08:09Z"
  generation: 3
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: web
    image: pinnace/busybox:1.0
    ports: [{containerPort: 80, name: http}]
    resources:
      requests: {cpu: 0.25, memory: 64Mi}
      limits: {cpu: 1, memory: 1e9}
    readinessProbe:
      httpGet: {path: /, port: http}
    livenessProbe:
      tcpSocket: {port: 80}
  nodeSelector: {disk: ssd}
"""


def test_decode_kubernetes_shapes() -> None:
    pod = codec.from_yaml(POD)
    assert isinstance(pod, core_pb2.Pod)
    container = pod.spec.containers[0]
    assert container.resources.requests["cpu"] == "250m"
    assert container.resources.limits["cpu"] == "1"
    assert container.resources.limits["memory"] == "1e9"
    assert container.readiness_probe.http_get.port.str_val == "http"
    assert container.liveness_probe.tcp_socket.port.int_val == 80
    assert pod.metadata.creation_timestamp.seconds == 1714979289
    assert pod.spec.termination_grace_period_seconds == 10
    assert pod.spec.HasField("termination_grace_period_seconds")


def test_encode_is_kubernetes_shaped_and_round_trips() -> None:
    pod = codec.from_yaml(POD)
    encoded = codec.encode_object(pod)
    assert list(encoded)[:2] == ["apiVersion", "kind"]
    assert encoded["metadata"]["creationTimestamp"] == "2024-05-06T07:08:09Z"
    assert encoded["metadata"]["generation"] == 3
    assert encoded["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] == "http"
    assert encoded["spec"]["containers"][0]["livenessProbe"]["tcpSocket"]["port"] == 80
    assert "status" not in encoded
    assert codec.from_yaml(codec.to_yaml(pod)) == pod
    assert codec.from_yaml(codec.to_json(pod)) == pod


def test_irregular_json_names() -> None:
    svc = codec.from_yaml("""
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  clusterIP: 10.96.0.10
  externalIPs: [192.0.2.1]
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports: [{port: 53, targetPort: dns, protocol: UDP}]
""")
    assert isinstance(svc, core_pb2.Service)
    assert svc.spec.cluster_ip == "10.96.0.10"
    assert list(svc.spec.external_ips) == ["192.0.2.1"]
    assert svc.spec.session_affinity_config.client_ip.timeout_seconds == 60
    assert codec.encode_object(svc)["spec"]["clusterIP"] == "10.96.0.10"


def test_secret_bytes_are_base64_in_manifests() -> None:
    secret = codec.from_yaml(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: cGFzcw==}\n"
    )
    assert isinstance(secret, core_pb2.Secret)
    assert secret.data["password"] == b"pass"
    assert codec.encode_object(secret)["data"]["password"] == base64.b64encode(b"pass").decode()


def test_optional_zero_is_kept_and_plain_zero_omitted() -> None:
    deployment = apps_pb2.Deployment()
    deployment.metadata.name = "d"
    deployment.spec.replicas = 0
    encoded = codec.encode_object(deployment)
    assert encoded["spec"] == {"replicas": 0}


def test_unknown_fields_are_all_reported_with_paths() -> None:
    with pytest.raises(ManifestError) as caught:
        codec.from_yaml("""
apiVersion: v1
kind: Pod
metadata: {name: x, labelz: {}}
spec:
  containers:
  - name: a
    imagePullPolicyy: Always
""")
    assert [str(e) for e in caught.value.errors] == [
        "metadata.labelz: unknown field",
        "spec.containers[0].imagePullPolicyy: unknown field",
    ]


@pytest.mark.parametrize(
    ("snippet", "error"),
    [
        ("spec: {replicas: three}", 'spec.replicas: Invalid type: "three": expected integer, got string'),
        ("spec: {replicas: 1.5}", "spec.replicas: Invalid type: 1.5: expected integer, got number"),
        ("spec: {replicas: 4294967296}", "spec.replicas: Invalid value: 4294967296: must be between"),
        ("spec: {paused: 'yes'}", 'spec.paused: Invalid type: "yes": expected boolean, got string'),
        ("spec: {selector: [1]}", "spec.selector: Invalid type: expected object, got array"),
        ("metadata: {labels: {a: 1}}", "metadata.labels[a]: Invalid type: 1: expected string, got integer"),
        (
            "metadata: {creationTimestamp: yesterday}",
            'metadata.creationTimestamp: Invalid value: "yesterday"',
        ),
        ("spec: {strategy: {rollingUpdate: {maxSurge: true}}}", "expected integer or string, got boolean"),
    ],
)
def test_type_errors(snippet: str, error: str) -> None:
    with pytest.raises(ManifestError) as caught:
        codec.from_yaml(f"apiVersion: apps/v1\nkind: Deployment\n{snippet}\n")
    assert any(str(e).startswith(error) or error in str(e) for e in caught.value.errors), caught.value.errors


def test_missing_apiversion_and_kind() -> None:
    with pytest.raises(ManifestError, match=r"apiVersion: Required value.*kind: Required value"):
        codec.from_yaml("metadata: {name: x}\n")


def test_multi_document_and_list_streams() -> None:
    text = """
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {k: v}}
- {apiVersion: v1, kind: ServiceAccount, metadata: {name: s}}
"""
    kinds = [d.info.kind for d in codec.decode_manifests(text)]
    assert kinds == ["Namespace", "ConfigMap", "ServiceAccount"]


def test_bad_document_is_named() -> None:
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nspec: 3\n"
    with pytest.raises(ManifestError, match=r"^document 1 \(Pod"):
        codec.decode_manifests(text)


def test_invalid_yaml() -> None:
    with pytest.raises(ManifestError, match="invalid YAML"):
        codec.decode_manifests("a: [b\n")
