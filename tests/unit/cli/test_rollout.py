"""`pinctl rollout` against the in-process apiserver with the real deployment, replica set and
garbage-collector controllers running and a fake kubelet making pods Ready on demand."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.apiserver.server import APIServer
from services.cli.app import main_async
from services.cli.ops import rollout
from services.client.client import Client
from services.controllers.daemonset import DaemonSetController
from services.controllers.deployment import DeploymentController
from services.controllers.garbagecollector import GarbageCollector
from services.controllers.replicaset import ReplicaSetController
from services.machinery.kinds import REGISTRY
from tests.unit.apiserver.helpers import manifest
from tests.unit.cli.conftest import Pinctl
from tests.unit.controllers.fakes import FakeKubelet, Harness, until

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0", ports: [{containerPort: 80}]}]}
"""

AGENT = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
"""


@pytest.fixture
async def controllers(client: Client) -> AsyncIterator[Harness]:
    harness = Harness(client)
    harness.add(ReplicaSetController)
    harness.add(DeploymentController)
    harness.add(GarbageCollector)
    await harness.start()
    yield harness
    await harness.stop()


@pytest.fixture
async def kubelet(client: Client) -> AsyncIterator[FakeKubelet]:
    fake = FakeKubelet(client)
    await fake.start()
    yield fake
    await fake.stop()


async def rolled_out(pinctl: Pinctl) -> None:
    result = await pinctl("rollout", "status", "deployment/web", "--timeout=20s")
    assert result.code == 0, result.err
    assert result.out.endswith('deployment "web" successfully rolled out\n')


async def make_ready(client: Client, kubelet: FakeKubelet) -> None:
    for pod in (await client.list("pods", "default", label_selector="app=web")).items:
        if pod.spec.node_name and not pod.metadata.HasField("deletion_timestamp"):
            await kubelet.set_status("default", pod.metadata.name, phase="Running", ready=True)


async def test_status_waits_and_reports_progress_like_kubectl(
    server: APIServer, client: Client, controllers: Harness, kubelet: FakeKubelet
) -> None:
    kubelet.auto_ready = False
    await client.create(manifest(DEPLOY))
    out, err = io.StringIO(), io.StringIO()
    argv = ["--server", f"127.0.0.1:{server.port}", "--insecure-plaintext", "rollout", "status", "deploy/web"]
    waiting = asyncio.create_task(main_async(argv, out=out, err=err))
    await until(lambda: "of 3 updated replicas are available..." in out.getvalue())
    assert not waiting.done()
    await make_ready(client, kubelet)
    assert await asyncio.wait_for(waiting, 20) == 0
    lines = out.getvalue().splitlines()
    assert 'Waiting for deployment "web" rollout to finish: 0 of 3 updated replicas are available...' in lines
    assert lines[-1] == 'deployment "web" successfully rolled out'
    assert err.getvalue() == ""


async def test_status_without_watch_and_with_timeout(
    pinctl: Pinctl, client: Client, controllers: Harness, kubelet: FakeKubelet
) -> None:
    kubelet.auto_ready = False
    await client.create(manifest(DEPLOY))

    async def all_updated() -> bool:
        return (await client.get("deployments", "web", "default")).status.updated_replicas == 3

    await until(all_updated)
    once = await pinctl("rollout", "status", "deploy/web", "--watch=false")
    assert (once.code, once.out) == (
        0,
        'Waiting for deployment "web" rollout to finish: 0 of 3 updated replicas are available...\n',
    )
    timed_out = await pinctl("rollout", "status", "deploy/web", "--timeout=300ms")
    assert timed_out.code == 1
    assert timed_out.err == "error: timed out waiting for the condition\n"
    wrong = await pinctl("rollout", "status", "deploy/web", "--revision=7")
    assert wrong.err == "error: desired revision (7) is different from the running revision (1)\n"


async def test_history_undo_pause_resume_restart(
    pinctl: Pinctl, client: Client, controllers: Harness, kubelet: FakeKubelet
) -> None:
    await client.create(manifest(DEPLOY))
    await rolled_out(pinctl)
    updated = await pinctl("set", "image", "deployment/web", "c=pinnace/busybox:2.0")
    assert updated.out == "deployment.apps/web image updated\n"
    await rolled_out(pinctl)
    # Kubernetes' controller copies the Deployment's change-cause annotation to the new
    # ReplicaSet; history reads it from there.
    (second,) = [
        r for r in await rollout.history(client, rollout.DEPLOYMENTS, "default", "web") if r.number == 2
    ]
    await client.patch(
        "replicasets",
        second.source.metadata.name,
        {"metadata": {"annotations": {"kubernetes.io/change-cause": "image 2.0"}}},
        "default",
    )

    history = await pinctl("rollout", "history", "deployment/web")
    assert (
        history.out
        == "deployment.apps/web\nREVISION  CHANGE-CAUSE\n1         <none>\n2         image 2.0\n\n"
    )
    detail = await pinctl("rollout", "history", "deployment/web", "--revision=2")
    lines = detail.out.splitlines()
    assert lines[:2] == ["deployment.apps/web with revision #2", "Pod Template:"]
    assert any(line.split() == ["Image:", "pinnace/busybox:2.0"] for line in lines)
    assert any(line.split() == ["Port:", "80/TCP"] for line in lines)
    missing = await pinctl("rollout", "history", "deployment/web", "--revision=9")
    assert missing.err == "error: unable to find the specified revision\n"

    undone = await pinctl("rollout", "undo", "deployment/web")
    assert undone.out == "deployment.apps/web rolled back\n"
    await rolled_out(pinctl)
    web = await client.get("deployments", "web", "default")
    assert web.spec.template.spec.containers[0].image == "pinnace/busybox:1.0"
    assert "pod-template-hash" not in web.spec.template.metadata.labels
    assert [r.number for r in await rollout.history(client, rollout.DEPLOYMENTS, "default", "web")] == [2, 3]
    same = await pinctl("rollout", "undo", "deployment/web", "--to-revision=3")
    assert same.out == "deployment.apps/web skipped rollback (current template already matches revision 3)\n"
    absent = await pinctl("rollout", "undo", "deployment/web", "--to-revision=1")
    assert absent.err == "error: unable to find specified revision 1 in history\n"

    assert (await pinctl("rollout", "pause", "deploy/web")).out == "deployment.apps/web paused\n"
    assert (await pinctl("rollout", "pause", "deploy/web")).out == "deployment.apps/web already paused\n"
    refused = await pinctl("rollout", "undo", "deploy/web")
    assert refused.err.startswith("error: you cannot rollback a paused deployment; resume it first")
    no_restart = await pinctl("rollout", "restart", "deploy/web")
    assert no_restart.err == (
        'error: deployments.apps "web" can\'t restart paused deployment (run rollout resume first)\n'
    )
    assert (await pinctl("rollout", "resume", "deploy/web")).out == "deployment.apps/web resumed\n"

    restarted = await pinctl("rollout", "restart", "deploy/web")
    assert restarted.out == "deployment.apps/web restarted\n"
    web = await client.get("deployments", "web", "default")
    assert rollout.RESTARTED_AT in web.spec.template.metadata.annotations
    await rolled_out(pinctl)
    assert [r.number for r in await rollout.history(client, rollout.DEPLOYMENTS, "default", "web")][-1] == 4


async def test_daemonset_and_statefulset_status(pinctl: Pinctl, client: Client) -> None:
    ds = manifest(AGENT)
    ds = await client.create(ds)
    first = await pinctl("rollout", "status", "ds/agent", "--watch=false")
    assert first.out == "Waiting for daemon set spec update to be observed...\n"
    ds.status.observed_generation = ds.metadata.generation
    ds.status.desired_number_scheduled = 2
    ds.status.updated_number_scheduled = 2
    ds.status.number_available = 1
    ds = await client.update_status(ds)
    progress = await pinctl("rollout", "status", "daemonset/agent", "--watch=false")
    assert (
        progress.out
        == 'Waiting for daemon set "agent" rollout to finish: 1 of 2 updated pods are available...\n'
    )
    ds.status.number_available = 2
    await client.update_status(ds)
    done = await pinctl("rollout", "status", "ds/agent", "--timeout=10s")
    assert done.out == 'daemon set "agent" successfully rolled out\n'

    sts = apps_pb2.StatefulSet()
    sts.metadata.name, sts.metadata.namespace = "db", "default"
    sts.spec.replicas = 2
    sts.spec.service_name = "db"
    sts.spec.selector.match_labels["app"] = "db"
    sts.spec.template.metadata.labels["app"] = "db"
    sts.spec.template.spec.containers.add(name="c", image="pinnace/busybox:1.0")
    sts = await client.create(sts)
    sts.status.observed_generation = sts.metadata.generation
    sts.status.ready_replicas = 1
    sts = await client.update_status(sts)
    waiting = await pinctl("rollout", "status", "sts/db", "--watch=false")
    assert waiting.out == "Waiting for 1 pods to be ready...\n"
    sts.status.ready_replicas = 2
    sts.status.updated_replicas = 1
    sts = await client.update_status(sts)
    # Defaulting gives RollingUpdate a partition of 0, so kubectl's partitioned branch applies.
    partial = await pinctl("rollout", "status", "sts/db", "--watch=false")
    assert (
        partial.out
        == "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...\n"
    )
    sts.status.updated_replicas = 2
    await client.update_status(sts)
    done = await pinctl("rollout", "status", "sts/db", "--timeout=10s")
    assert done.out == "partitioned roll out complete: 2 new pods have been updated...\n"


async def test_unsupported_kinds_and_bad_input(
    pinctl: Pinctl, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    rs = manifest(
        DEPLOY.replace("Deployment", "ReplicaSet").replace(
            "  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}\n", ""
        )
    )
    await client.create(rs)
    status = await pinctl("rollout", "status", "rs/web")
    assert status.err == "error: no status viewer has been implemented for ReplicaSet.apps\n"
    history = await pinctl("rollout", "history", "rs/web")
    assert history.err == 'error: no history viewer has been implemented for "ReplicaSet.apps"\n'
    pause = await pinctl("rollout", "pause", "rs/web")
    assert pause.err == 'error: replicasets.apps "web" pausing is not supported\n'
    assert (await pinctl("rollout", "status")).err == "error: required resource not specified\n"
    assert (await pinctl("rollout", "status", "deploy/nope")).err == (
        'Error from server (NotFound): deployments.apps "nope" not found\n'
    )
    bad_timeout = await pinctl("rollout", "status", "deploy/web", "--timeout=5")
    assert bad_timeout.code == 2
    # argparse reports flag errors itself, on the process's stderr.
    assert 'time: missing unit in duration "5"' in capsys.readouterr().err


async def test_daemonset_history_and_undo_through_controller_revisions(
    pinctl: Pinctl, client: Client, kubelet: FakeKubelet
) -> None:
    for name in ("node-a", "node-b"):
        node = core_pb2.Node()
        node.metadata.name = name
        node.status.conditions.add(type="Ready", status="True")
        await client.create(node)
    harness = Harness(client)
    harness.add(DaemonSetController)
    await harness.start()
    try:
        await client.create(manifest(AGENT))
        done = await pinctl("rollout", "status", "ds/agent", "--timeout=20s")
        assert done.out.endswith('daemon set "agent" successfully rolled out\n'), done.err
        assert (await pinctl("set", "image", "ds/agent", "c=pinnace/busybox:2.0")).code == 0
        assert (await pinctl("rollout", "status", "ds/agent", "--timeout=20s")).code == 0

        listed = await pinctl("rollout", "history", "daemonset/agent")
        assert (
            listed.out
            == "daemonset.apps/agent\nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n"
        )
        first = await pinctl("rollout", "history", "ds/agent", "--revision=1")
        assert first.out.startswith("daemonset.apps/agent with revision #1\nPod Template:\n")
        assert any(line.split() == ["Image:", "pinnace/busybox:1.0"] for line in first.out.splitlines())

        assert (await pinctl("rollout", "undo", "ds/agent")).out == "daemonset.apps/agent rolled back\n"
        agent = await client.get("daemonsets", "agent", "default")
        assert agent.spec.template.spec.containers[0].image == "pinnace/busybox:1.0"
        assert "controller-revision-hash" not in agent.spec.template.metadata.labels
        assert (await pinctl("rollout", "status", "ds/agent", "--timeout=20s")).code == 0

        async def renumbered() -> bool:
            revisions = await rollout.history(client, REGISTRY.by_name("ds"), "default", "agent")
            return [r.number for r in revisions] == [2, 3]

        await until(renumbered)
        skipped = await pinctl("rollout", "undo", "ds/agent", "--to-revision=3")
        assert (
            skipped.out
            == "daemonset.apps/agent skipped rollback (current template already matches revision 3)\n"
        )
        missing = await pinctl("rollout", "undo", "ds/agent", "--to-revision=1")
        assert missing.err == "error: unable to find specified revision 1 in history\n"
    finally:
        await harness.stop()
