from __future__ import annotations

from services.client.client import Client
from services.controllers.garbagecollector import GarbageCollector
from services.controllers.podutil import controller_ref, is_active
from services.controllers.replicaset import ReplicationControllerController
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.controllers.fakes import FakeKubelet, Harness, until
from tests.unit.controllers.test_replicaset import RC, count_is


async def _exists(client: Client, resource: str, name: str) -> bool:
    try:
        await client.get(resource, name, "default")
    except Exception:
        return False
    return True


async def test_deleting_an_rc_cascades_in_the_background(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(ReplicationControllerController)
    harness.add(GarbageCollector)
    await harness.start()
    await client.create(manifest(RC))
    await until(lambda: count_is(client, "app=fe", 2))
    await client.delete("replicationcontrollers", "fe", "default")

    async def no_pods() -> bool:
        return not (await client.list("pods", "default", label_selector="app=fe")).items

    await until(no_pods)


async def test_orphan_deletion_keeps_pods_without_owner(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(ReplicationControllerController)
    harness.add(GarbageCollector)
    await harness.start()
    await client.create(manifest(RC))
    await until(lambda: count_is(client, "app=fe", 2))
    await client.delete("replicationcontrollers", "fe", "default", propagation_policy="Orphan")

    async def rc_gone() -> bool:
        return not await _exists(client, "replicationcontrollers", "fe")

    await until(rc_gone)

    async def orphaned() -> bool:
        pods = (await client.list("pods", "default", label_selector="app=fe")).items
        return len(pods) == 2 and all(controller_ref(p) is None and is_active(p) for p in pods)

    await until(orphaned)


async def test_foreground_deletion_waits_for_blocking_dependents(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(ReplicationControllerController)
    gc = harness.add(GarbageCollector)
    await harness.start()
    rc = await client.create(manifest(RC))

    async def running() -> bool:
        pods = (await client.list("pods", "default", label_selector="app=fe")).items
        return len(pods) == 2 and all(p.status.phase == "Running" for p in pods)

    await until(running)
    kubelet.paused = True  # pods on nodes wait for their kubelet: the owner must wait too
    await client.delete("replicationcontrollers", "fe", "default", propagation_policy="Foreground")

    async def pods_terminating() -> bool:
        pods = (await client.list("pods", "default", label_selector="app=fe")).items
        return len(pods) == 2 and all(p.metadata.HasField("deletion_timestamp") for p in pods)

    await until(pods_terminating)
    still = await client.get("replicationcontrollers", "fe", "default")
    assert still.metadata.uid == rc.metadata.uid and "foregroundDeletion" in still.metadata.finalizers
    for p in (await client.list("pods", "default", label_selector="app=fe")).items:
        await client.delete("pods", p.metadata.name, "default", grace_period_seconds=0)

    async def rc_gone() -> bool:
        return not await _exists(client, "replicationcontrollers", "fe")

    await until(rc_gone)
    assert gc.syncs > 0


async def test_dependent_with_a_live_second_owner_only_loses_the_dead_reference(
    client: Client, harness: Harness
) -> None:
    harness.add(GarbageCollector)
    await harness.start()
    a = await client.create(
        manifest("""
apiVersion: v1
kind: ConfigMap
metadata: {name: owner-a, namespace: default}
""")
    )
    b = await client.create(
        manifest("""
apiVersion: v1
kind: ConfigMap
metadata: {name: owner-b, namespace: default}
""")
    )
    dep = pod("dep")
    for owner in (a, b):
        dep.metadata.owner_references.add(
            api_version="v1", kind="ConfigMap", name=owner.metadata.name, uid=owner.metadata.uid
        )
    await client.create(dep)
    await client.delete("configmaps", "owner-a", "default")

    async def one_owner() -> bool:
        p = await client.get("pods", "dep", "default")
        return [r.name for r in p.metadata.owner_references] == ["owner-b"]

    await until(one_owner)
    await client.delete("configmaps", "owner-b", "default")

    async def dep_gone() -> bool:
        return not await _exists(client, "pods", "dep")

    await until(dep_gone)


async def test_dependent_of_a_never_existing_owner_is_collected(client: Client, harness: Harness) -> None:
    harness.add(GarbageCollector)
    await harness.start()
    dep = pod("stray")
    dep.metadata.owner_references.add(api_version="v1", kind="ConfigMap", name="ghost", uid="0000-ghost")
    await client.create(dep)

    async def gone() -> bool:
        return not await _exists(client, "pods", "stray")

    await until(gone)
