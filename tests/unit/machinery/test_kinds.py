import pytest

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.machinery.kinds import REGISTRY, UnknownKindError

ISSUE_SHORT_NAMES = {
    "po": "Pod",
    "svc": "Service",
    "rc": "ReplicationController",
    "rs": "ReplicaSet",
    "deploy": "Deployment",
    "ds": "DaemonSet",
    "sts": "StatefulSet",
    "job": "Job",
    "cj": "CronJob",
    "ns": "Namespace",
    "no": "Node",
    "ep": "Endpoints",
    "cm": "ConfigMap",
    "sa": "ServiceAccount",
    "pv": "PersistentVolume",
    "pvc": "PersistentVolumeClaim",
    "hpa": "HorizontalPodAutoscaler",
    "quota": "ResourceQuota",
    "limits": "LimitRange",
    "ev": "Event",
}


@pytest.mark.parametrize(("short", "kind"), ISSUE_SHORT_NAMES.items())
def test_short_names(short: str, kind: str) -> None:
    assert REGISTRY.by_name(short).kind == kind


def test_lookup_by_plural_singular_and_group() -> None:
    assert REGISTRY.by_name("deployments").api_version == "apps/v1"
    assert REGISTRY.by_name("Deployment").plural == "deployments"
    assert REGISTRY.by_name("deployments.apps").kind == "Deployment"
    assert REGISTRY.by_gvk("v1", "Pod").message_type is core_pb2.Pod
    assert REGISTRY.by_message(apps_pb2.DaemonSet()).plural == "daemonsets"


def test_scope() -> None:
    assert not REGISTRY.by_name("nodes").namespaced
    assert not REGISTRY.by_name("clusterroles").namespaced
    assert REGISTRY.by_name("pods").namespaced


def test_unknown_kind_errors_read_like_kubectl() -> None:
    with pytest.raises(UnknownKindError, match='doesn\'t have a resource type "gadgets"'):
        REGISTRY.by_name("gadgets")
    with pytest.raises(UnknownKindError, match="served as apps/v1"):
        REGISTRY.by_gvk("extensions/v1beta1", "Deployment")


def test_subresource_bodies_are_not_stored_kinds() -> None:
    stored = {k.kind for k in REGISTRY.stored()}
    assert "Binding" not in stored and "Scale" not in stored and "Eviction" not in stored
    assert {"Pod", "Lease", "PriorityClass", "Ingress", "ClusterRoleBinding"} <= stored


def test_pod_field_values() -> None:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = "web", "default"
    pod.spec.node_name, pod.status.phase = "node-a", "Running"
    values = REGISTRY.by_name("pods").field_values(pod)
    assert values["spec.nodeName"] == "node-a" and values["status.phase"] == "Running"
    assert values["metadata.namespace"] == "default"
