"""`pinctl get` against an in-process apiserver: kubectl's tables, output forms, errors, watch."""

from __future__ import annotations

import asyncio
import io
import json

import yaml

from services.apiserver.server import APIServer
from services.cli.app import main_async
from services.client.client import Client
from services.machinery import codec
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.cli.conftest import Pinctl


async def test_empty_namespace_says_no_resources(pinctl: Pinctl) -> None:
    result = await pinctl("get", "pods")
    assert (result.code, result.out) == (0, "")
    assert result.err == "No resources found in default namespace.\n"


async def test_pod_table(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("web", labels={"app": "web"}))
    await client.create(pod("db"))
    result = await pinctl("get", "pods")
    lines = result.out.splitlines()
    assert result.code == 0
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[0].startswith("NAME   READY   STATUS    RESTARTS   AGE")
    assert [line.split()[:4] for line in lines[1:]] == [
        ["db", "0/1", "Pending", "0"],
        ["web", "0/1", "Pending", "0"],
    ]
    wide = (await pinctl("get", "pods", "web", "-o", "wide", "--show-labels")).out.splitlines()
    assert [c.strip() for c in wide[0].split("   ") if c.strip()][-5:] == [
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
        "LABELS",
    ]
    assert wide[1].split()[-5:] == ["<none>", "<none>", "<none>", "<none>", "app=web"]


async def test_label_and_field_selectors(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("web", labels={"app": "web"}))
    await client.create(pod("db", labels={"app": "db"}, node="n1"))
    names = await pinctl("get", "pods", "-l", "app=web", "-o", "name")
    assert names.out == "pod/web\n"
    by_node = await pinctl("get", "pods", "--field-selector", "spec.nodeName=n1", "-o", "name")
    assert by_node.out == "pod/db\n"
    labelled = await pinctl("get", "pods", "-L", "app")
    assert labelled.out.splitlines()[0].split()[-1] == "APP"
    assert labelled.out.splitlines()[1].split()[-1] == "db"


async def test_service_node_port_and_all_namespaces(pinctl: Pinctl, client: Client) -> None:
    await client.create(
        manifest("""
apiVersion: v1
kind: Service
metadata: {name: front, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, nodePort: 30001}]
""")
    )
    result = await pinctl("get", "svc", "-A")
    lines = result.out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    front = next(line.split() for line in lines if " front " in line)
    assert front[:3] == ["default", "front", "NodePort"]
    assert front[4:6] == ["<none>", "80:30001/TCP"]
    wide = await pinctl("get", "service", "front", "-o", "wide")
    assert wide.out.splitlines()[1].split()[-1] == "app=web"


async def test_get_all_prefixes_kinds(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("web"))
    result = await pinctl("get", "all")
    sections = result.out.split("\n\n")
    assert sections[0].splitlines()[1].startswith("pod/web ")
    assert any(line.startswith("service/kubernetes ") for line in sections[1].splitlines())
    both = await pinctl("get", "pods,svc", "-o", "name")
    assert both.out == "pod/web\nservice/kubernetes\n"


async def test_node_status_roles_version(pinctl: Pinctl, client: Client) -> None:
    await client.create(
        manifest("""
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {node-role.kubernetes.io/control-plane: ""}}
spec: {unschedulable: true}
""")
    )
    result = await pinctl("get", "nodes")
    assert result.out.splitlines()[1].split()[:3] == ["n1", "Unknown,SchedulingDisabled", "control-plane"]


async def test_yaml_and_json_round_trip(pinctl: Pinctl, client: Client) -> None:
    created = await client.create(pod("web"))
    one = await pinctl("get", "pod", "web", "-o", "yaml")
    document = yaml.safe_load(one.out)
    assert document["kind"] == "Pod"
    assert codec.decode_object(document).obj == created
    listed = json.loads((await pinctl("get", "pods", "-o", "json")).out)
    assert listed["kind"] == "List"
    assert [codec.decode_object(item).obj for item in listed["items"]] == [created]
    slash = json.loads((await pinctl("get", "pod/web", "-o", "json")).out)
    assert slash["metadata"]["name"] == "web"


async def test_jsonpath(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("a"))
    await client.create(pod("b"))
    listed = await pinctl("get", "pods", "-o", 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}')
    assert listed.out == "a\nb\n"
    one = await pinctl("get", "pod", "a", "-o", "jsonpath={.spec.containers[0].image}")
    assert one.out == "pinnace/busybox:1.0"


async def test_not_found_and_partial_results(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("web"))
    result = await pinctl("get", "pods", "web", "nope")
    assert result.code == 1
    assert result.out.splitlines()[1].startswith("web ")
    assert result.err == 'Error from server (NotFound): pods "nope" not found\n'
    ignored = await pinctl("get", "pods", "nope", "--ignore-not-found")
    assert (ignored.code, ignored.out, ignored.err) == (0, "", "")


async def test_bad_input(pinctl: Pinctl) -> None:
    unknown = await pinctl("get", "widgets")
    assert (unknown.code, unknown.err) == (1, 'error: the server doesn\'t have a resource type "widgets"\n')
    output = await pinctl("get", "pods", "-o", "toml")
    assert output.code == 1
    assert 'output format "toml"' in output.err
    mixed = await pinctl("get", "pods", "pod/web")
    assert mixed.code == 1 and "resource/name form" in mixed.err
    selector = await pinctl("get", "pods", "web", "-l", "app=web")
    assert selector.err == "error: name cannot be provided when a selector is specified\n"
    bad_selector = await pinctl("get", "pods", "-l", "app in (")
    assert bad_selector.code == 1 and bad_selector.err.startswith("Error from server (BadRequest)")
    usage = await pinctl("get", "--no-such-flag")
    assert usage.code == 2


async def test_watch_prints_rows_as_events_arrive(server: APIServer, client: Client) -> None:
    await client.create(pod("first"))
    out, err = io.StringIO(), io.StringIO()
    argv = ["--server", f"127.0.0.1:{server.port}", "--insecure-plaintext", "get", "pods", "-w"]
    task = asyncio.create_task(main_async(argv, out=out, err=err))
    try:
        while "first" not in out.getvalue():
            await asyncio.sleep(0.02)
        await client.create(pod("third"))
        while "third" not in out.getvalue():
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
    lines = out.getvalue().splitlines()
    assert lines[0].split()[0] == "NAME"
    assert lines[1].split()[:3] == ["first", "0/1", "Pending"]
    assert lines[2].split()[:3] == ["third", "0/1", "Pending"]
    assert lines[2].index("Pending") == lines[1].index("Pending")  # the widths of the first rows


async def test_tables_of_other_kinds(pinctl: Pinctl, client: Client) -> None:
    for text in (
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: pinnace/busybox:1.0}]}
""",
        """
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: Never, containers: [{name: c, image: pinnace/busybox:1.0}]}
""",
        """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: default}
data: {a: "1", b: "2"}
""",
        """
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: default}
type: Opaque
data: {password: cGFzcw==}
""",
        """
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec: {minAvailable: 2, selector: {matchLabels: {app: web}}}
""",
    ):
        await client.create(manifest(text))

    async def rows(resource: str, *flags: str) -> list[list[str]]:
        result = await pinctl("get", resource, *flags)
        assert result.code == 0, result.err
        return [[c.strip() for c in line.split("   ") if c.strip()] for line in result.out.splitlines()]

    deployments = await rows("deploy", "-o", "wide")
    assert deployments[0] == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert deployments[1][:4] + deployments[1][5:] == [
        "web",
        "0/3",
        "0",
        "0",
        "c",
        "pinnace/busybox:1.0",
        "app=web",
    ]
    cronjobs = await rows("cj")
    assert cronjobs[0] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    assert cronjobs[1][:6] == ["tick", "*/5 * * * *", "<none>", "False", "0", "<none>"]
    assert (await rows("cm"))[1][:2] == ["settings", "2"]
    assert (await rows("secrets"))[1][:3] == ["creds", "Opaque", "1"]
    pdbs = await rows("pdb")
    assert pdbs[0] == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]
    assert pdbs[1][:4] == ["web", "2", "N/A", "0"]
    namespaces = await rows("namespaces", "kube-system")
    assert namespaces[1][:2] == ["kube-system", "Active"]


async def test_watch_only_with_event_column(server: APIServer, client: Client) -> None:
    await client.create(pod("old"))
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "--server",
        f"127.0.0.1:{server.port}",
        "--insecure-plaintext",
        "get",
        "pods",
        "--watch-only",
        "--output-watch-events",
    ]
    task = asyncio.create_task(main_async(argv, out=out, err=err))
    try:
        created = 0
        while "new-" not in out.getvalue():  # until the watch is open and reports one
            await client.create(pod(f"new-{created}"))
            created += 1
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:2] == ["EVENT", "NAME"]
    assert lines[1].split()[0] == "ADDED" and lines[1].split()[1].startswith("new-")
    assert " old " not in out.getvalue()  # --watch-only: the existing pod is not listed


async def test_no_type_given(pinctl: Pinctl) -> None:
    result = await pinctl("get")
    assert result.code == 1
    assert result.err.startswith('You must specify the type of resource to get. Use "pinctl api-resources"')
    assert result.err.endswith("error: Required resource not specified.\n")
