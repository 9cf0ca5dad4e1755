"""`pinctl scale` against the in-process apiserver: the scale subresource, preconditions,
selectors and bad input (nothing changes)."""

from __future__ import annotations

from services.client.client import Client
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.cli.conftest import Pinctl

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {tier: front}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
"""

RC = """
apiVersion: v1
kind: ReplicationController
metadata: {name: front, namespace: default, labels: {tier: front}}
spec:
  replicas: 1
  selector: {app: front}
  template:
    metadata: {labels: {app: front}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
"""


async def replicas(client: Client, resource: str, name: str) -> int:
    return (await client.get(resource, name, "default")).spec.replicas


async def test_scale_deployment_and_rc(pinctl: Pinctl, client: Client) -> None:
    await client.create(manifest(DEPLOY))
    await client.create(manifest(RC))
    result = await pinctl("scale", "deployment/web", "--replicas=5")
    assert (result.code, result.out, result.err) == (0, "deployment.apps/web scaled\n", "")
    assert await replicas(client, "deployments", "web") == 5
    result = await pinctl("scale", "rc", "front", "--replicas", "3")
    assert result.out == "replicationcontroller/front scaled\n"
    assert await replicas(client, "replicationcontrollers", "front") == 3


async def test_scale_by_selector_scales_every_match(pinctl: Pinctl, client: Client) -> None:
    await client.create(manifest(DEPLOY))
    other = manifest(DEPLOY)
    other.metadata.name = "api"
    other.metadata.labels["tier"] = "back"
    await client.create(other)
    result = await pinctl("scale", "deployments", "-l", "tier=front", "--replicas=0")
    assert result.out == "deployment.apps/web scaled\n"
    assert await replicas(client, "deployments", "web") == 0
    assert await replicas(client, "deployments", "api") == 2


async def test_current_replicas_precondition(pinctl: Pinctl, client: Client) -> None:
    await client.create(manifest(DEPLOY))
    refused = await pinctl("scale", "deploy/web", "--current-replicas=3", "--replicas=4")
    assert refused.code == 1
    assert refused.err == "error: Expected replicas to be 3, was 2\n"
    assert await replicas(client, "deployments", "web") == 2
    accepted = await pinctl("scale", "deploy/web", "--current-replicas=2", "--replicas=4")
    assert accepted.code == 0
    assert await replicas(client, "deployments", "web") == 4


async def test_resource_version_precondition(pinctl: Pinctl, client: Client) -> None:
    created = await client.create(manifest(DEPLOY))
    await client.patch("deployments", "web", {"metadata": {"labels": {"moved": "on"}}}, "default")
    stale = created.metadata.resource_version
    refused = await pinctl("scale", "deploy/web", f"--resource-version={stale}", "--replicas=4")
    assert refused.code == 1
    assert refused.err.startswith(f"error: Expected resource version to be {stale}, was ")
    assert await replicas(client, "deployments", "web") == 2
    current = (await client.get("deployments", "web", "default")).metadata.resource_version
    assert (await pinctl("scale", "deploy/web", f"--resource-version={current}", "--replicas=4")).code == 0
    assert await replicas(client, "deployments", "web") == 4


async def test_bad_input_changes_nothing(pinctl: Pinctl, client: Client) -> None:
    await client.create(manifest(DEPLOY))
    missing = await pinctl("scale", "deploy/web")
    assert (missing.code, missing.err) == (2, 'error: required flag(s) "replicas" not set\n')
    unknown = await pinctl("scale", "widgets/web", "--replicas=3")
    assert (unknown.code, unknown.err) == (1, 'error: the server doesn\'t have a resource type "widgets"\n')
    negative = await pinctl("scale", "deploy/web", "--replicas=-1")
    assert negative.code == 2
    absent = await pinctl("scale", "deploy/nope", "--replicas=3")
    assert (absent.code, absent.err) == (
        1,
        'Error from server (NotFound): deployments.apps "nope" not found\n',
    )
    await client.create(pod("p"))
    not_scalable = await pinctl("scale", "pod/p", "--replicas=3")
    assert not_scalable.code == 1
    assert "the server could not find the requested resource" in not_scalable.err
    no_name = await pinctl("scale", "deployments", "--replicas=3")
    assert no_name.err == "error: resource(s) were provided, but no name was specified\n"
    assert await replicas(client, "deployments", "web") == 2
