"""`pinctl run` and `pinctl expose` against the in-process apiserver: the objects kubectl's
generators make, dry runs, and bad input that creates nothing."""

from __future__ import annotations

import yaml

from services.client.client import Client
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.cli.conftest import Pinctl

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {team: a}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: c, image: "pinnace/busybox:1.0", ports: [{containerPort: 80}, {containerPort: 53, protocol: UDP}]}
"""


async def names(client: Client, resource: str) -> set[str]:
    return {o.metadata.name for o in (await client.list(resource, "default")).items}


async def test_run_creates_the_pod_kubectl_would(pinctl: Pinctl, client: Client) -> None:
    result = await pinctl(
        "run",
        "web",
        "--image=pinnace/busybox:1.0",
        "--port=80",
        "--env=MESSAGE=hi",
        "--labels=app=web,tier=front",
        "--",
        "serve",
        "80",
    )
    assert (result.code, result.out, result.err) == (0, "pod/web created\n", "")
    web = await client.get("pods", "web", "default")
    assert dict(web.metadata.labels) == {"app": "web", "tier": "front"}
    (container,) = web.spec.containers
    assert (container.name, container.image, list(container.args)) == (
        "web",
        "pinnace/busybox:1.0",
        ["serve", "80"],
    )
    assert [p.container_port for p in container.ports] == [80]
    assert [(e.name, e.value) for e in container.env] == [("MESSAGE", "hi")]
    assert (web.spec.restart_policy, web.spec.dns_policy) == ("Always", "ClusterFirst")

    once = await pinctl(
        "run",
        "job",
        "--image=pinnace/busybox:1.0",
        "--restart=Never",
        "--command",
        "--",
        "sh",
        "-c",
        "echo hi",
    )
    assert once.out == "pod/job created\n"
    job = await client.get("pods", "job", "default")
    assert list(job.spec.containers[0].command) == ["sh", "-c", "echo hi"]
    assert dict(job.metadata.labels) == {"run": "job"}
    assert job.spec.restart_policy == "Never"


async def test_run_dry_runs_create_nothing(pinctl: Pinctl, client: Client) -> None:
    printed = await pinctl("run", "web", "--image=pinnace/busybox:1.0", "--dry-run=client", "-o", "yaml")
    doc = yaml.safe_load(printed.out)
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == ("v1", "Pod", "web")
    assert doc["metadata"]["labels"] == {"run": "web"}
    assert doc["spec"]["containers"] == [{"image": "pinnace/busybox:1.0", "name": "web"}]
    server = await pinctl("run", "web", "--image=pinnace/busybox:1.0", "--dry-run=server")
    assert server.out == "pod/web created (server dry run)\n"
    assert await names(client, "pods") == set()


async def test_run_bad_input_creates_nothing(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("taken"))
    cases = {
        ("web",): "error: --image is required\n",
        ("--image=pinnace/busybox:1.0",): "error: NAME is required for run\n",
        ("web", "--image=Busybox::1"): 'error: Invalid image name "Busybox::1": invalid reference format\n',
        ("web", "--image=busybox", "--restart=Sometimes"): "error: invalid restart policy: Sometimes\n",
        ("web", "--image=busybox", "--env=NOVALUE"): "error: invalid env: NOVALUE\n",
        ("web", "--image=busybox", "--labels=oops"): "error: unexpected label spec: oops\n",
        ("web", "--image=busybox", "--port=http"): 'error: invalid port "http": must be a number\n',
        ("taken", "--image=busybox"): 'Error from server (AlreadyExists): pods "taken" already exists\n',
    }
    for argv, err in cases.items():
        result = await pinctl("run", *argv)
        assert (result.code != 0, result.err) == (True, err), argv
    invalid = await pinctl("run", "Bad_Name", "--image=busybox")
    assert invalid.err.startswith("Error from server (Invalid): ")
    assert await names(client, "pods") == {"taken"}


async def test_expose_deployment_rc_pod_and_service(pinctl: Pinctl, client: Client) -> None:
    await client.create(manifest(DEPLOY))
    result = await pinctl("expose", "deployment", "web", "--port=8080", "--target-port=80")
    assert (result.code, result.out) == (0, "service/web exposed\n")
    svc = await client.get("services", "web", "default")
    assert dict(svc.spec.selector) == {"app": "web"}
    assert dict(svc.metadata.labels) == {"team": "a"}
    assert [(p.port, p.target_port.int_val, p.protocol) for p in svc.spec.ports] == [(8080, 80, "TCP")]
    assert svc.spec.cluster_ip

    both = await pinctl("expose", "deploy/web", "--name=web-all")
    assert both.out == "service/web-all exposed\n"
    every = await client.get("services", "web-all", "default")
    assert [(p.name, p.port, p.target_port.int_val, p.protocol) for p in every.spec.ports] == [
        ("port-1", 80, 80, "TCP"),
        ("port-2", 53, 53, "UDP"),
    ]

    await client.create(pod("single", labels={"app": "single"}))
    node_port = await pinctl("expose", "pod/single", "--port=80", "--type=NodePort", "--target-port=http")
    assert node_port.out == "service/single exposed\n"
    single = await client.get("services", "single", "default")
    assert single.spec.type == "NodePort" and single.spec.ports[0].node_port >= 30000
    assert single.spec.ports[0].target_port.str_val == "http"

    again = await pinctl("expose", "svc/web", "--name=web-copy", "--protocol=UDP")
    assert again.out == "service/web-copy exposed\n"
    copy = await client.get("services", "web-copy", "default")
    assert dict(copy.spec.selector) == {"app": "web"}
    assert [(p.port, p.protocol) for p in copy.spec.ports] == [(8080, "UDP")]

    printed = await pinctl(
        "expose", "deploy/web", "--name=preview", "--port=81", "--dry-run=client", "-o", "yaml"
    )
    assert yaml.safe_load(printed.out)["spec"]["ports"] == [{"port": 81, "protocol": "TCP", "targetPort": 81}]
    assert await names(client, "services") >= {"web", "web-all", "single", "web-copy"}
    assert "preview" not in await names(client, "services")


async def test_expose_refusals_create_nothing(pinctl: Pinctl, client: Client) -> None:
    await client.create(manifest(DEPLOY))
    await client.create(pod("bare"))
    await client.create(pod("portless", labels={"app": "portless"}))
    await client.create(
        manifest("""
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
""")
    )
    before = await names(client, "services")
    cases = {
        ("ds/agent", "--port=80"): "error: cannot expose a DaemonSet.apps\n",
        ("pod/bare", "--port=80"): (
            "error: couldn't retrieve selectors via --selector flag or introspection: "
            "the pod has no labels and cannot be exposed\n"
        ),
        ("pod/portless",): "error: couldn't find port via --port flag or introspection\n",
        ("deploy/web", "--type=Magic"): (
            "error: invalid service type 'Magic': must be one of ClusterIP, NodePort, LoadBalancer, ExternalName\n"
        ),
        ("deploy/nope", "--port=80"): 'Error from server (NotFound): deployments.apps "nope" not found\n',
        ("widgets/web",): 'error: the server doesn\'t have a resource type "widgets"\n',
    }
    for argv, err in cases.items():
        result = await pinctl("expose", *argv)
        assert (result.code != 0, result.err) == (True, err), argv
    assert await names(client, "services") == before
    await pinctl("expose", "deploy/web", "--port=80")
    dup = await pinctl("expose", "deploy/web", "--port=80")
    assert dup.err == 'Error from server (AlreadyExists): services "web" already exists\n'
