from __future__ import annotations

import asyncio

from pinnace.api.apps.v1 import apps_pb2
from services.client.client import Client
from services.controllers import deployment_util as du
from services.controllers.deployment import DeploymentController, rollback
from services.controllers.garbagecollector import GarbageCollector
from services.controllers.podutil import is_active
from services.controllers.replicaset import ReplicaSetController
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import FakeKubelet, Harness, scale, until

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
"""


def deployment(text: str = DEPLOY, **changes):
    d = manifest(text)
    for key, value in changes.items():
        setattr(d.spec, key, value)
    return d


async def get_d(client: Client, name: str = "web") -> apps_pb2.Deployment:
    return await client.get("deployments", name, "default")


async def replica_sets(client: Client) -> list[apps_pb2.ReplicaSet]:
    return (await client.list("replicasets", "default")).items


async def set_image(client: Client, image: str, name: str = "web") -> None:
    await client.patch(
        "deployments",
        name,
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}},
        "default",
    )


def complete(client: Client, name: str = "web", replicas: int = 4):
    async def check() -> bool:
        d = await get_d(client, name)
        s = d.status
        return (
            s.observed_generation == d.metadata.generation
            and s.updated_replicas == replicas
            and s.available_replicas == replicas
            and s.replicas == replicas
            and any(c.type == "Progressing" and c.reason == "NewReplicaSetAvailable" for c in s.conditions)
        )

    return check


async def active_pods(client: Client):
    return [p for p in (await client.list("pods", "default", label_selector="app=web")).items if is_active(p)]


def start(harness: Harness) -> None:
    harness.add(ReplicaSetController)
    harness.add(DeploymentController)
    harness.add(GarbageCollector)


async def test_rolling_update_respects_surge_and_unavailability_then_rolls_back(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    start(harness)
    await harness.start()
    await client.create(deployment())
    await until(complete(client))
    (first,) = await replica_sets(client)
    assert first.metadata.labels[du.HASH_LABEL] == first.metadata.name.rsplit("-", 1)[1]
    assert first.metadata.annotations[du.REVISION] == "1"
    d = await get_d(client)
    assert {c.type: c.status for c in d.status.conditions} == {"Available": "True", "Progressing": "True"}

    violations: list[str] = []
    done = asyncio.Event()

    async def watch_invariants() -> None:
        while not done.is_set():
            sets = await replica_sets(client)
            total = sum(rs.spec.replicas for rs in sets)
            if total > 5:
                violations.append(f"surge exceeded: {total}")
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch_invariants())
    await set_image(client, "pinnace/busybox:2.0")
    await until(complete(client), timeout=20)
    done.set()
    await watcher
    assert not violations
    sets = {rs.metadata.annotations[du.REVISION]: rs for rs in await replica_sets(client)}
    assert sets["1"].spec.replicas == 0 and sets["2"].spec.replicas == 4
    assert len(await active_pods(client)) == 4

    await rollback(client, "default", "web", 1)
    await until(lambda: _image_is(client, "pinnace/busybox:1.0"))
    await until(complete(client), timeout=20)
    revived = await client.get("replicasets", first.metadata.name, "default")
    assert revived.metadata.annotations[du.REVISION] == "3"
    assert revived.spec.replicas == 4
    events = (await client.list("events", "default", field_selector="involvedObject.name=web")).items
    assert "DeploymentRollback" in {e.reason for e in events}


async def _image_is(client: Client, image: str) -> bool:
    return (await get_d(client)).spec.template.spec.containers[0].image == image


async def test_recreate_stops_old_pods_before_starting_new_ones(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    start(harness)
    await harness.start()
    text = DEPLOY.replace(
        "strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}",
        "strategy: {type: Recreate}",
    )
    await client.create(manifest(text))
    await until(complete(client))
    mixed: list[int] = []
    done = asyncio.Event()

    async def watch_mix() -> None:
        while not done.is_set():
            images = {p.spec.containers[0].image for p in await active_pods(client)}
            if len(images) > 1:
                mixed.append(len(images))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch_mix())
    await set_image(client, "pinnace/busybox:2.0")
    await until(complete(client), timeout=20)
    done.set()
    await watcher
    assert not mixed
    assert {p.spec.containers[0].image for p in await active_pods(client)} == {"pinnace/busybox:2.0"}


async def test_pause_resume_and_revision_history_limit(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    start(harness)
    await harness.start()
    d = deployment()
    d.spec.revision_history_limit = 1
    await client.create(d)
    await until(complete(client))
    await client.patch("deployments", "web", {"spec": {"paused": True}}, "default")
    await set_image(client, "pinnace/busybox:2.0")

    async def paused_condition() -> bool:
        d = await get_d(client)
        return any(c.reason == "DeploymentPaused" for c in d.status.conditions)

    await until(paused_condition)
    await asyncio.sleep(0.3)
    assert len(await replica_sets(client)) == 1
    await client.patch("deployments", "web", {"spec": {"paused": False}}, "default")
    await until(complete(client), timeout=20)
    await set_image(client, "pinnace/busybox:3.0")
    await until(complete(client), timeout=20)

    async def history_trimmed() -> bool:
        return len(await replica_sets(client)) == 2

    await until(history_trimmed)


async def test_progress_deadline_exceeded(client: Client, harness: Harness, kubelet: FakeKubelet) -> None:
    start(harness)
    await harness.start()
    d = deployment()
    d.spec.progress_deadline_seconds = 1
    await client.create(d)
    await until(complete(client))
    kubelet.auto_ready = False
    await set_image(client, "pinnace/busybox:broken")

    async def timed_out() -> bool:
        d = await get_d(client)
        return any(
            c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded" and c.status == "False"
            for c in d.status.conditions
        )

    await until(timed_out, timeout=10)


async def test_scaling_mid_rollout_is_proportional(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    start(harness)
    await harness.start()
    text = DEPLOY.replace("replicas: 4", "replicas: 10").replace(
        "maxSurge: 1, maxUnavailable: 1", "maxSurge: 3, maxUnavailable: 2"
    )
    await client.create(manifest(text))
    await until(complete(client, replicas=10))
    kubelet.auto_ready = False  # the new pods never become ready: the rollout stalls
    await set_image(client, "pinnace/busybox:2.0")

    async def stalled() -> bool:
        sizes = sorted(rs.spec.replicas for rs in await replica_sets(client))
        return sizes == [5, 8]

    await until(stalled)
    await scale(client, "deployments", "web", 20)

    async def spread() -> bool:
        sets = await replica_sets(client)
        return sum(rs.spec.replicas for rs in sets) == 23 and all(rs.spec.replicas > 8 for rs in sets)

    await until(spread)
    sizes = sorted(rs.spec.replicas for rs in await replica_sets(client))
    assert sizes[0] >= 9 and sizes[1] >= 11


async def test_restart_mid_rollout_converges_without_extra_pods(client: Client, kubelet: FakeKubelet) -> None:
    first = Harness(client)
    start(first)
    await first.start()
    text = DEPLOY.replace("replicas: 4", "replicas: 6")
    await client.create(manifest(text))
    await until(complete(client, replicas=6))
    await set_image(client, "pinnace/busybox:2.0")

    async def mid_rollout() -> bool:
        sets = await replica_sets(client)
        return len(sets) == 2 and all(rs.spec.replicas > 0 for rs in sets)

    await until(mid_rollout)
    await first.stop()
    second = Harness(client)
    start(second)
    await second.start()
    try:
        await until(complete(client, replicas=6), timeout=20)
        await asyncio.sleep(0.3)
        pods = await active_pods(client)
        assert len(pods) == 6
        assert {p.spec.containers[0].image for p in pods} == {"pinnace/busybox:2.0"}
    finally:
        await second.stop()


def test_proportions_and_hash() -> None:
    a, b = apps_pb2.ReplicaSet(), apps_pb2.ReplicaSet()
    a.metadata.name, a.spec.replicas = "a", 8
    b.metadata.name, b.spec.replicas = "b", 3
    sizes = du.proportions([a, b], 12, 23)
    assert sum(sizes.values()) == 23
    assert sizes == {"a": 17, "b": 6}
    shrink = du.proportions([a, b], -5, 6)
    assert sum(shrink.values()) == 6
    d = deployment()
    assert du.template_hash(d.spec.template) == du.template_hash(d.spec.template)
    assert du.template_hash(d.spec.template) != du.template_hash(d.spec.template, 1)
    assert du.surge_and_unavailable(d) == (1, 1)


async def test_conflict_storm_converges_to_the_last_spec_without_extra_pods(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    start(harness)
    await harness.start()
    await client.create(deployment())
    await until(complete(client))

    async def writer(images: list[str], sizes: list[int]) -> None:
        for image, size in zip(images, sizes, strict=True):
            for _ in range(30):
                try:
                    d = await get_d(client)
                    d.spec.template.spec.containers[0].image = image
                    d.spec.replicas = size
                    await client.update(d)
                    break
                except Exception:
                    await asyncio.sleep(0.005)
            await asyncio.sleep(0.02)

    await asyncio.gather(
        writer(["pinnace/busybox:a", "pinnace/busybox:b", "pinnace/busybox:c"], [6, 2, 5]),
        writer(["pinnace/busybox:d", "pinnace/busybox:e"], [3, 7]),
    )
    final = await get_d(client)
    image, replicas = final.spec.template.spec.containers[0].image, final.spec.replicas
    await until(complete(client, replicas=replicas), timeout=30)
    await asyncio.sleep(0.3)
    pods = await active_pods(client)
    assert len(pods) == replicas
    assert {p.spec.containers[0].image for p in pods} == {image}
