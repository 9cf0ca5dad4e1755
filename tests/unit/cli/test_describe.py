"""`pinctl describe`: kubectl's sections and alignment, events, prefixes, errors."""

from __future__ import annotations

from services.cli.printers import tabwrite
from services.client.client import Client
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.cli.conftest import Pinctl

EVENT = """
apiVersion: v1
kind: Event
metadata: {name: web-1.1, namespace: default}
involvedObject: {kind: Pod, name: web-1, namespace: default}
reason: Scheduled
message: Successfully assigned default/web-1 to n1
type: Normal
source: {component: default-scheduler}
count: 3
firstTimestamp: "2026-01-01T00:00:00Z"
lastTimestamp: "2026-01-01T00:00:00Z"
"""


def test_tabwriter_aligns_runs_of_lines() -> None:
    text = "Name:\tweb\nService Account:\tdefault\nContainers:\n  c:\n    Image:\tx\n    Container ID:\ty\n"
    assert tabwrite(text).splitlines() == [
        "Name:             web",
        "Service Account:  default",
        "Containers:",
        "  c:",
        "    Image:         x",
        "    Container ID:  y",
    ]


async def test_describe_pod_with_events(pinctl: Pinctl, client: Client) -> None:
    created = pod("web-1", labels={"app": "web", "tier": "front"}, node="n1")
    created.spec.containers[0].ports.add(container_port=80, protocol="TCP")
    created = await client.create(created)
    event = manifest(EVENT)
    event.involved_object.uid = created.metadata.uid
    await client.create(event)
    other = manifest(EVENT.replace("web-1.1", "web-1.2").replace("Scheduled", "Other"))
    other.involved_object.uid = "someone-else"  # an earlier pod of the same name
    await client.create(other)
    result = await pinctl("describe", "pod", "web")  # a prefix of the name
    lines = result.out.splitlines()
    assert result.code == 0
    assert lines[0] == "Name:             web-1"
    assert "Node:             n1/" in lines
    assert "Labels:           app=web" in lines and "                  tier=front" in lines
    assert "    Port:         80/TCP" in lines
    assert "Tolerations:      node.kubernetes.io/not-ready:NoExecute op=Exists for 300s" in lines
    events = lines[lines.index("Events:") :]
    assert events[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert events[3].split()[:2] == ["Normal", "Scheduled"]
    assert "(x3 over" in events[3]
    assert events[3].endswith("default-scheduler  Successfully assigned default/web-1 to n1")
    assert len(events) == 4  # the other pod's event is not shown
    quiet = await pinctl("describe", "pod", "web-1", "--show-events=false")
    assert "Events:" not in quiet.out


async def test_describe_service_deployment_node_namespace(pinctl: Pinctl, client: Client) -> None:
    await client.create(
        manifest("""
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30002}]
""")
    )
    await client.create(
        manifest("""
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: default}
subsets: [{addresses: [{ip: 10.244.0.5}], ports: [{name: http, port: 8080}]}]
""")
    )
    service = (await pinctl("describe", "svc", "web")).out.splitlines()
    assert "Type:                     NodePort" in service
    assert "Port:                     http  80/TCP" in service
    assert "TargetPort:               8080/TCP" in service
    assert "NodePort:                 http  30002/TCP" in service
    assert "Endpoints:                10.244.0.5:8080" in service
    await client.create(
        manifest("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: pinnace/busybox:1.0}]}
""")
    )
    deployment = (await pinctl("describe", "deployments.apps/web")).out.splitlines()
    assert (
        "Replicas:               1 desired | 0 updated | 0 total | 0 available | 0 unavailable" in deployment
    )
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in deployment
    assert "   c:" in deployment and "    Image:        pinnace/busybox:1.0" in deployment
    await client.create(
        manifest("""
apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {unschedulable: true}
status:
  allocatable: {cpu: "2", memory: 4Gi}
  conditions: [{type: Ready, status: "True", reason: KubeletReady, message: ready}]
""")
    )
    node = (await pinctl("describe", "node", "n1")).out.splitlines()
    assert "Unschedulable:      true" in node
    assert any(line.split()[:2] == ["Ready", "True"] for line in node)
    assert "Non-terminated Pods:          (0 in total)" in node
    namespace = (await pinctl("describe", "ns", "default")).out.splitlines()
    assert namespace[-3:] == ["No resource quota.", "", "No LimitRange resource."]


async def test_describe_generic_kind(pinctl: Pinctl, client: Client) -> None:
    await client.create(
        manifest("""
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: default}
data: {mode: fast}
""")
    )
    lines = (await pinctl("describe", "configmap", "settings")).out.splitlines()
    assert lines[0] == "Name:         settings"
    assert "API Version:  v1" in lines and "Kind:         ConfigMap" in lines
    assert "Data:" in lines and "  mode:  fast" in lines


async def test_describe_errors(pinctl: Pinctl) -> None:
    missing = await pinctl("describe", "pod", "nope")
    assert (missing.code, missing.err) == (1, 'Error from server (NotFound): pods "nope" not found\n')
    nothing = await pinctl("describe", "pods")
    assert (nothing.code, nothing.err) == (0, "No resources found in default namespace.\n")
    assert (await pinctl("describe")).code == 1
    assert (
        await pinctl("describe", "gizmos", "x")
    ).err == 'error: the server doesn\'t have a resource type "gizmos"\n'
