"""Validation rules against what Kubernetes reports for the same input."""

from typing import Any

import pytest

from services.machinery import codec
from services.machinery.defaults import apply_defaults
from services.machinery.errors import ValidationError
from services.machinery.validation import ServiceRules, validate, validate_or_raise


def errors_of(text: str, rules: ServiceRules | None = None) -> list[str]:
    obj: Any = apply_defaults(codec.from_yaml(text))
    meta = obj.metadata
    if not meta.namespace and meta.name != "cluster-scoped":
        meta.namespace = "default"
    return [str(e) for e in validate(obj, rules)]


def pod(spec: str, name: str = "p") -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{spec}"


def test_valid_pod_has_no_errors() -> None:
    assert errors_of(pod("  containers: [{name: a, image: 'x:1'}]\n")) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("  containers: []\n", "spec.containers: Required value"),
        ("  containers: [{name: a}]\n", "spec.containers[0].image: Required value"),
        ("  containers: [{name: A, image: x}]\n", 'spec.containers[0].name: Invalid value: "A"'),
        (
            "  containers: [{name: a, image: x, ports: [{containerPort: 70000}]}]\n",
            'spec.containers[0].ports[0].containerPort: Invalid value: "70000": must be between 1 and 65535',
        ),
        (
            "  containers: [{name: a, image: x, ports: [{containerPort: 0}]}]\n",
            "spec.containers[0].ports[0].containerPort: Required value",
        ),
        (
            "  containers: [{name: a, image: x, ports: [{containerPort: 80, name: toolongportname123}]}]\n",
            "must be no more than 15 characters",
        ),
        (
            "  containers: [{name: a, image: x, ports: [{containerPort: 80, protocol: HTTP}]}]\n",
            'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
        ),
        (
            "  restartPolicy: Sometimes\n  containers: [{name: a, image: x}]\n",
            'spec.restartPolicy: Unsupported value: "Sometimes"',
        ),
        (
            "  containers: [{name: a, image: x, volumeMounts: [{name: v, mountPath: /v}]}]\n",
            'spec.containers[0].volumeMounts[0].name: Not found: "v"',
        ),
        (
            "  volumes: [{name: v}]\n  containers: [{name: a, image: x}]\n",
            "spec.volumes[0]: Required value: must specify a volume type",
        ),
        (
            "  volumes: [{name: v, emptyDir: {}, hostPath: {path: /x}}]\n  containers: [{name: a, image: x}]\n",
            "spec.volumes[0]: Forbidden: may not specify more than 1 volume type",
        ),
        (
            "  containers: [{name: a, image: x, env: [{name: 1BAD, value: v}]}]\n",
            'spec.containers[0].env[0].name: Invalid value: "1BAD"',
        ),
        (
            "  containers: [{name: a, image: x, env: [{name: A, value: v, valueFrom: {fieldRef: {fieldPath: "
            "metadata.name}}}]}]\n",
            'spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
        ),
        (
            "  containers: [{name: a, image: x, env: [{name: A, valueFrom: {fieldRef: {fieldPath: spec.bogus}}}]}]\n",
            'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.bogus"',
        ),
        (
            "  containers: [{name: a, image: x, resources: {requests: {cpu: 2}, limits: {cpu: 1}}}]\n",
            'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
        ),
        (
            "  containers: [{name: a, image: x, resources: {requests: {gpu: 1}}}]\n",
            'spec.containers[0].resources.requests[gpu]: Unsupported value: "gpu"',
        ),
        (
            "  containers: [{name: a, image: x, livenessProbe: {}}]\n",
            "spec.containers[0].livenessProbe: Required value: must specify a handler type",
        ),
        (
            "  containers: [{name: a, image: x, livenessProbe: {exec: {command: ['true']}, successThreshold: 2}}]\n",
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        ),
        (
            "  initContainers: [{name: i, image: x, readinessProbe: {exec: {command: ['true']}}}]\n"
            "  containers: [{name: a, image: x}]\n",
            "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers",
        ),
        (
            "  initContainers: [{name: a, image: x}]\n  containers: [{name: a, image: x}]\n",
            'spec.containers[0].name: Duplicate value: "a"',
        ),
        (
            "  tolerations: [{key: k, operator: Exists, value: v}]\n  containers: [{name: a, image: x}]\n",
            "value must be empty when `operator` is 'Exists'",
        ),
        (
            "  tolerations: [{key: k, effect: NoSchedule, tolerationSeconds: 5}]\n  containers: [{name: a, image: x}]\n",
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ),
        (
            "  hostNetwork: true\n  containers: [{name: a, image: x, ports: [{containerPort: 80, hostPort: 81}]}]\n",
            "must match `containerPort` when `hostNetwork` is true",
        ),
        (
            "  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: "
            "[{matchExpressions: [{key: k, operator: Near}]}]}}}\n  containers: [{name: a, image: x}]\n",
            'Unsupported value: "Near"',
        ),
        (
            "  affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: "
            "{matchLabels: {a: b}}}]}}\n  containers: [{name: a, image: x}]\n",
            "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: "
            "Required value: can not be empty",
        ),
        (
            "  dnsPolicy: None\n  containers: [{name: a, image: x}]\n",
            "spec.dnsConfig.nameservers: Required value",
        ),
        (
            "  volumes: [{name: s, secret: {secretName: s, items: [{key: k, path: ../etc}]}}]\n"
            "  containers: [{name: a, image: x}]\n",
            "spec.volumes[0].secret.items[0].path: Invalid value: \"../etc\": must not contain '..'",
        ),
    ],
)
def test_pod_rules(spec: str, expected: str) -> None:
    errors = errors_of(pod(spec))
    assert any(e.startswith(expected) or expected in e for e in errors), errors


def test_all_errors_reported_at_once_with_subject() -> None:
    obj: Any = apply_defaults(codec.from_yaml(pod("  containers: [{name: A}, {name: A}]\n", name="Bad")))
    obj.metadata.namespace = "default"
    with pytest.raises(ValidationError) as caught:
        validate_or_raise(obj)
    message = str(caught.value)
    assert message.startswith('Pod "Bad" is invalid: [metadata.name: Invalid value: "Bad"')
    assert len(caught.value.errors) >= 4


def test_metadata_rules() -> None:
    errors = errors_of("""
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
  labels: {"-bad": "v", "ok": "-bad-"}
  ownerReferences: [{apiVersion: v1, kind: X, name: a, uid: "1", controller: true},
                    {apiVersion: v1, kind: X, name: b, uid: "2", controller: true}]
""")
    assert any(e.startswith('metadata.labels: Invalid value: "-bad"') for e in errors)
    assert any(e.startswith('metadata.labels: Invalid value: "-bad-"') for e in errors)
    assert any("Only one reference can have Controller set to true" in e for e in errors)


def test_cluster_scoped_objects_refuse_a_namespace() -> None:
    obj = apply_defaults(
        codec.from_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: dev, namespace: x}\n")
    )
    assert [str(e) for e in validate(obj)] == ["metadata.namespace: Forbidden: not allowed on this type"]


def test_service_names_are_dns1035_labels() -> None:
    errors = errors_of("apiVersion: v1\nkind: Service\nmetadata: {name: 1svc}\nspec: {ports: [{port: 80}]}\n")
    assert errors and errors[0].startswith('metadata.name: Invalid value: "1svc": a DNS-1035 label')


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{}", "spec.ports: Required value"),
        ("{ports: [{port: 80}, {port: 81}]}", "spec.ports[0].name: Required value"),
        ("{ports: [{port: 80, name: a}, {port: 80, name: b}]}", 'spec.ports[1]: Duplicate value: "80/TCP"'),
        ("{type: Magic, ports: [{port: 80}]}", 'spec.type: Unsupported value: "Magic"'),
        (
            "{ports: [{port: 80, nodePort: 30080}]}",
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
        ),
        ("{type: NodePort, clusterIP: None, ports: [{port: 80}]}", "may not be set to 'None'"),
        ("{clusterIP: 10.0.0.300, ports: [{port: 80}]}", 'spec.clusterIP: Invalid value: "10.0.0.300"'),
        ("{type: ExternalName}", "spec.externalName: Required value"),
        (
            "{ports: [{port: 80, targetPort: 'bad_name'}]}",
            'spec.ports[0].targetPort: Invalid value: "bad_name"',
        ),
        (
            "{sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 100000}}, "
            "ports: [{port: 80}]}",
            "must be greater than 0 and less than 86400",
        ),
    ],
)
def test_service_rules(spec: str, expected: str) -> None:
    errors = errors_of(f"apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\nspec: {spec}\n")
    assert any(expected in e for e in errors), errors


def test_node_port_range_is_configurable() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: NodePort, ports: [{port: 80, nodePort: 8080}]}\n"
    assert errors_of(text, ServiceRules(node_port_range=(8000, 9000))) == []
    assert any("30000-32767" in e for e in errors_of(text))


def test_headless_service_without_ports_is_valid() -> None:
    assert errors_of("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: None}\n") == []


TEMPLATE = "template: {metadata: {labels: {app: a}}, spec: {containers: [{name: c, image: 'x:1'}]}}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {{name: r}}\nspec: {{{TEMPLATE}}}\n",
            "spec.selector: Required value",
        ),
        (
            f"apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {{name: r}}\nspec: {{selector: {{}}, {TEMPLATE}}}\n",
            "empty selector is invalid for replicaset",
        ),
        (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec: {{replicas: -1, selector: "
            f"{{matchLabels: {{app: a}}}}, {TEMPLATE}}}\n",
            "spec.replicas: Invalid value: -1",
        ),
        (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec: {{selector: {{matchLabels: "
            f"{{app: a}}}}, strategy: {{type: Recreate, rollingUpdate: {{maxSurge: 1}}}}, {TEMPLATE}}}\n",
            "spec.strategy.rollingUpdate: Forbidden",
        ),
        (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec: {{selector: {{matchLabels: "
            f"{{app: a}}}}, strategy: {{rollingUpdate: {{maxUnavailable: '120%'}}}}, {TEMPLATE}}}\n",
            "must not be greater than 100%",
        ),
        (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec: {{minReadySeconds: 700, selector: "
            f"{{matchLabels: {{app: a}}}}, {TEMPLATE}}}\n",
            "must be greater than minReadySeconds",
        ),
        (
            f"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: s}}\nspec: {{podManagementPolicy: Random, "
            f"selector: {{matchLabels: {{app: a}}}}, {TEMPLATE}}}\n",
            "spec.podManagementPolicy: Unsupported value",
        ),
        (
            f"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: s}}\nspec: {{selector: {{matchLabels: "
            f"{{app: b}}}}, {TEMPLATE}}}\n",
            "`selector` does not match template `labels`",
        ),
        (
            "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec: {scaleTargetRef: "
            "{kind: Deployment, name: d}, minReplicas: 5, maxReplicas: 2}\n",
            "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
        ),
        (
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec: {backoffLimit: -1, template: {spec: "
            "{restartPolicy: Never, containers: [{name: c, image: x}]}}}\n",
            "spec.backoffLimit: Invalid value: -1",
        ),
    ],
)
def test_workload_rules(text: str, expected: str) -> None:
    errors = errors_of(text)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {'bad key': YQ==}\n",
            'data[bad key]: Invalid value: "bad key": a valid config key',
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\nbinaryData: {k: YQ==}\n",
            "duplicate of key present in data",
        ),
        (
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nspec: {resources: {requests: "
            "{storage: 1Gi}}}\n",
            "spec.accessModes: Required value",
        ),
        (
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {pods: -1}}\n",
            'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0',
        ),
        (
            "apiVersion: v1\nkind: LimitRange\nmetadata: {name: l}\nspec: {limits: [{type: Container, min: {cpu: 2}, "
            "max: {cpu: 1}}]}\n",
            "min value 2 is greater than max value 1",
        ),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b}\nroleRef: {apiGroup: "
            "rbac.authorization.k8s.io, kind: Thing, name: r}\n",
            'roleRef.kind: Unsupported value: "Thing"',
        ),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules: [{resources: [pods]}]\n",
            "rules[0].verbs: Required value",
        ),
        (
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: cluster-scoped}\nvalue: "
            "2000000000\n",
            "maximum allowed value of a user defined priority",
        ),
    ],
)
def test_other_kinds(text: str, expected: str) -> None:
    errors = errors_of(text)
    assert any(expected in e for e in errors), errors
