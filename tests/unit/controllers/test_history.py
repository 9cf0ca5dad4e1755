"""ControllerRevisions of DaemonSets and StatefulSets: creation, pod labels, partitions that
recreate pods at the current revision, rollback by renumbering, and history trimming."""

from __future__ import annotations

from typing import Any

import pytest

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.controllers import history
from services.controllers.daemonset import DaemonSetController
from services.controllers.garbagecollector import GarbageCollector
from services.controllers.podutil import is_active
from services.controllers.statefulset import StatefulSetController
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import FakeKubelet, Harness, until
from tests.unit.controllers.test_daemonset import DS, node
from tests.unit.controllers.test_statefulset import STS


def image_patch(tag: str) -> dict[str, Any]:
    return {
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": f"pinnace/busybox:{tag}"}]}}}
    }


async def revisions(client: Client, namespace: str) -> list[apps_pb2.ControllerRevision]:
    return history.ordered((await client.list("controllerrevisions", namespace)).items)


async def pods(client: Client, namespace: str, selector: str) -> list[core_pb2.Pod]:
    found = (await client.list("pods", namespace, label_selector=selector)).items
    return sorted((p for p in found if is_active(p)), key=lambda p: p.metadata.name)  # type: ignore[arg-type]


def images_are(client: Client, namespace: str, selector: str, image: str, count: int):
    async def check() -> bool:
        found = await pods(client, namespace, selector)
        return len(found) == count and all(p.spec.containers[0].image == image for p in found)

    return check


async def test_daemonset_history_rollback_and_trim(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    await client.create(node("w1", {"role": "worker"}))
    await client.create(node("w2", {"role": "worker"}))
    harness.add(DaemonSetController)
    await harness.start()
    ds = await client.create(manifest(DS))
    await until(images_are(client, "kube-system", "app=agent", "pinnace/busybox:1.0", 2))
    [first] = await revisions(client, "kube-system")
    digest = history.digest_of(first)
    assert first.metadata.name == f"agent-{digest}" and first.revision == 1
    assert first.data.spec.template.spec.containers[0].image == "pinnace/busybox:1.0"
    owner = first.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "DaemonSet",
        "agent",
        ds.metadata.uid,
        True,
    )
    assert {
        p.metadata.labels[history.REVISION_LABEL] for p in await pods(client, "kube-system", "app=agent")
    } == {digest}

    await client.patch("daemonsets", "agent", image_patch("2.0"), "kube-system")
    await until(images_are(client, "kube-system", "app=agent", "pinnace/busybox:2.0", 2))
    assert next((r.metadata.name, r.revision) for r in await revisions(client, "kube-system")) == (
        first.metadata.name,
        1,
    )

    message = await history.rollback(client, "daemonsets", "kube-system", "agent")
    assert message == "rolled back"
    await until(images_are(client, "kube-system", "app=agent", "pinnace/busybox:1.0", 2))

    async def renumbered() -> bool:
        found = await revisions(client, "kube-system")
        return [r.metadata.name for r in found][-1] == first.metadata.name and found[-1].revision == 3

    await until(renumbered)
    assert len(await revisions(client, "kube-system")) == 2  # the old template was reused, not copied
    assert await history.rollback(client, "daemonsets", "kube-system", "agent", to_revision=3) == (
        "skipped rollback (current template already matches revision 3)"
    )
    with pytest.raises(history.RollbackError, match="unable to find specified revision 7 in history"):
        await history.rollback(client, "daemonsets", "kube-system", "agent", to_revision=7)

    # revisionHistoryLimit 0: the revision no pod uses any more goes.
    # A patch, not get-then-update: the controller writes the status meanwhile.
    await client.patch("daemonsets", "agent", {"spec": {"revisionHistoryLimit": 0}}, "kube-system")

    async def trimmed() -> bool:
        return [r.metadata.name for r in await revisions(client, "kube-system")] == [first.metadata.name]

    await until(trimmed)


async def test_statefulset_partition_keeps_and_recreates_the_current_revision(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(StatefulSetController)
    await harness.start()
    sts = manifest(STS)
    sts.spec.pod_management_policy = "Parallel"
    sts.spec.update_strategy.rolling_update.partition = 2
    await client.create(sts)
    await until(images_are(client, "default", "app=db", "pinnace/busybox:1.0", 3))
    [old] = await revisions(client, "default")
    await client.patch("statefulsets", "db", image_patch("2.0"), "default")

    async def db2_updated() -> bool:
        found = {p.metadata.name: p for p in await pods(client, "default", "app=db")}
        pod = found.get("db-2")
        return len(found) == 3 and pod is not None and pod.spec.containers[0].image == "pinnace/busybox:2.0"

    await until(db2_updated)
    status = (await client.get("statefulsets", "db", "default")).status
    new = [r for r in await revisions(client, "default") if r.metadata.name != old.metadata.name]
    assert [r.revision for r in new] == [2]
    assert (status.current_revision, status.update_revision) == (old.metadata.name, new[0].metadata.name)
    by_name = {p.metadata.name: p for p in await pods(client, "default", "app=db")}
    assert by_name["db-2"].metadata.labels[history.REVISION_LABEL] == new[0].metadata.name
    assert by_name["db-0"].metadata.labels[history.REVISION_LABEL] == old.metadata.name

    # A pod below the partition comes back at the current revision, with the old template.
    await client.delete("pods", "db-0", "default")

    async def db0_back() -> core_pb2.Pod | None:
        found = {p.metadata.name: p for p in await pods(client, "default", "app=db")}
        pod = found.get("db-0")
        return pod if pod is not None and pod.metadata.uid != by_name["db-0"].metadata.uid else None

    await until(db0_back)
    back = {p.metadata.name: p for p in await pods(client, "default", "app=db")}["db-0"]
    assert back.spec.containers[0].image == "pinnace/busybox:1.0"
    assert back.metadata.labels[history.REVISION_LABEL] == old.metadata.name


def test_fnv1_and_hashes() -> None:
    assert history.fnv32(b"") == 0x811C9DC5
    assert history.fnv32(b"a") == 0x050C5D7E
    template = core_pb2.PodTemplateSpec()
    template.spec.containers.add(name="c", image="pinnace/busybox:1.0")
    data = history.revision_data(template)
    assert history.revision_hash(data, 0) != history.revision_hash(data, 1)
    labelled = core_pb2.PodTemplateSpec()
    labelled.CopyFrom(template)
    labelled.metadata.labels[history.REVISION_LABEL] = "x"
    assert history.revision_data(labelled) == data  # the pods' own label is not part of a revision
    assert history.revision_name("a" * 300, "h") == "a" * 223 + "-h"


async def test_revisions_go_with_their_owner(client: Client, harness: Harness, kubelet: FakeKubelet) -> None:
    harness.add(StatefulSetController)
    harness.add(GarbageCollector)
    await harness.start()
    await client.create(manifest(STS))
    await until(lambda: _count(client, 1))
    await client.delete("statefulsets", "db", "default")
    await until(lambda: _count(client, 0))


async def _count(client: Client, expected: int) -> bool:
    return len(await revisions(client, "default")) == expected
