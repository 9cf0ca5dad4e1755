"""Deleting a namespace removes everything in it: its API objects, and on the nodes the
containers of its pods; other namespaces are untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.support import EXAMPLES, eventually, namespace, namespace_gone, ready_pods

pytestmark = pytest.mark.e2e

NAMESPACE = "development"  # the notes' example names it
KINDS = ("pods", "replicationcontrollers", "services", "configmaps", "secrets", "endpoints")
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"


@pytest.fixture
def docker_client() -> Iterator[Any]:
    """The dockerd every lab node's CRI shim uses, to see the containers the nodes run."""
    client = docker.from_env()
    yield client
    client.close()


async def test_namespace_deletion_removes_everything_in_it(
    lab: Any, tmp_path: Path, docker_client: Any
) -> None:
    extra = tmp_path / "more.yaml"
    extra.write_text(
        """\
apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 2
  selector: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: pinnace/busybox:1.0
        command: ["serve", "80"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: test
---
apiVersion: v1
kind: Secret
metadata:
  name: token
stringData:
  token: s3cret
"""
    )
    async with lab.api_client() as client, namespace(client, "bystander") as bystander:
        lab.pinctl("apply", "-n", bystander, "-f", str(extra))
        lab.pinctl("apply", "-f", str(EXAMPLES / "namespaces" / "development.yaml"))
        lab.pinctl("apply", "-n", NAMESPACE, "-f", str(extra))
        await ready_pods(client, NAMESPACE, "", 3)
        await ready_pods(client, bystander, "", 2)
        assert _containers(docker_client, NAMESPACE)

        lab.pinctl("delete", "namespace", NAMESPACE)
        await namespace_gone(client, NAMESPACE)
        for kind in KINDS:
            left = (await client.list(kind, NAMESPACE)).items
            assert left == [], f"{kind} left in {NAMESPACE}: {[o.metadata.name for o in left]}"

        async def containers_gone() -> bool:
            return not _containers(docker_client, NAMESPACE)

        await eventually(containers_gone, f"the nodes to remove {NAMESPACE}'s containers", 120)
        # The other namespace keeps all it had.
        await ready_pods(client, bystander, "", 2)
        for kind, name in (("services", "web"), ("configmaps", "settings"), ("secrets", "token")):
            await client.get(kind, name, bystander)


def _containers(docker_client: Any, ns: str) -> list[Any]:
    listed: list[Any] = docker_client.api.containers(
        all=True, filters={"label": f"{POD_NAMESPACE_LABEL}={ns}"}
    )
    return listed
