"""`pinctl set image` on every kind with a pod template (and pods): kubectl's messages, `*`,
init containers, dry runs, and bad input that changes nothing."""

from __future__ import annotations

from services.client.client import Client
from services.machinery import codec
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.cli.conftest import Pinctl

TEMPLATE = """
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers: [{name: init, image: "pinnace/busybox:1.0"}]
      containers: [{name: c, image: "pinnace/busybox:1.0"}, {name: side, image: "pinnace/busybox:1.0"}]
"""
KINDS = {
    "deployments": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:",
    "replicasets": "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web, namespace: default}\nspec:",
    "daemonsets": "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: web, namespace: default}\nspec:",
    "statefulsets": (
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web, namespace: default}\nspec:\n"
        "  serviceName: web"
    ),
}
RC = """
apiVersion: v1
kind: ReplicationController
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
"""


def images(obj: object) -> dict[str, str]:
    spec = obj.spec if hasattr(obj.spec, "containers") else obj.spec.template.spec  # type: ignore[attr-defined]
    return {c.name: c.image for c in [*spec.init_containers, *spec.containers]}


async def test_set_image_on_every_kind(pinctl: Pinctl, client: Client) -> None:
    for resource, head in KINDS.items():
        await client.create(manifest(head + TEMPLATE))
        result = await pinctl("set", "image", f"{resource}/web", "c=pinnace/busybox:2.0")
        label = codec.encode_object(await client.get(resource, "web", "default"))["kind"].lower()
        assert (result.code, result.out) == (0, f"{label}.apps/web image updated\n"), resource
        assert images(await client.get(resource, "web", "default")) == {
            "init": "pinnace/busybox:1.0",
            "c": "pinnace/busybox:2.0",
            "side": "pinnace/busybox:1.0",
        }
    await client.create(manifest(RC))
    assert (await pinctl("set", "image", "rc", "web", "c=pinnace/busybox:3.0")).out == (
        "replicationcontroller/web image updated\n"
    )
    await client.create(pod("solo"))
    assert (
        await pinctl("set", "image", "pod/solo", "c=pinnace/busybox:3.0")
    ).out == "pod/solo image updated\n"
    assert images(await client.get("pods", "solo", "default")) == {"c": "pinnace/busybox:3.0"}


async def test_star_init_containers_and_dry_runs(pinctl: Pinctl, client: Client) -> None:
    await client.create(manifest(KINDS["deployments"] + TEMPLATE))
    every = await pinctl("set", "image", "deploy/web", "*=pinnace/busybox:4.0")
    assert every.code == 0
    assert set(images(await client.get("deployments", "web", "default")).values()) == {"pinnace/busybox:4.0"}
    init = await pinctl("set", "image", "deploy/web", "init=pinnace/busybox:5.0")
    assert init.code == 0
    assert images(await client.get("deployments", "web", "default"))["init"] == "pinnace/busybox:5.0"
    before = (await client.get("deployments", "web", "default")).metadata.resource_version
    client_side = await pinctl("set", "image", "deploy/web", "c=x:1", "--dry-run=client", "-o", "yaml")
    assert "image: x:1" in client_side.out
    server_side = await pinctl("set", "image", "deploy/web", "c=x:1", "--dry-run=server")
    assert server_side.out == "deployment.apps/web image updated (server dry run)\n"
    unchanged = await pinctl("set", "image", "deploy/web", "init=pinnace/busybox:5.0")
    assert unchanged.out == "deployment.apps/web image updated\n"
    assert (await client.get("deployments", "web", "default")).metadata.resource_version == before


async def test_bad_input_changes_nothing(pinctl: Pinctl, client: Client) -> None:
    created = await client.create(manifest(KINDS["deployments"] + TEMPLATE))
    cases = {
        ("deploy/web", "nope=x:1"): 'error: unable to find container named "nope"\n',
        ("deploy/web",): "error: at least one image update is required\n",
        (
            "c=x:1",
        ): "error: one or more resources must be specified as <resource> <name> or <resource>/<name>\n",
        (
            "deploy/web",
            "c=x:1",
            "rs/other",
        ): "error: all resources must be specified before image changes: rs/other\n",
        ("gizmos/web", "c=x:1"): 'error: the server doesn\'t have a resource type "gizmos"\n',
        ("deploy/nope", "c=x:1"): 'Error from server (NotFound): deployments.apps "nope" not found\n',
    }
    for argv, err in cases.items():
        result = await pinctl("set", "image", *argv)
        assert (result.code != 0, result.err) == (True, err), argv
    empty = await pinctl("set", "image", "deploy/web", "c=")
    assert empty.code == 1
    assert empty.err.startswith("Error from server (Invalid): ")
    assert "spec.template.spec.containers[0].image" in empty.err
    after = await client.get("deployments", "web", "default")
    assert after.metadata.resource_version == created.metadata.resource_version
