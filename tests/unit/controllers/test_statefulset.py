from __future__ import annotations

import asyncio

from services.client.client import Client
from services.controllers.statefulset import StatefulSetController
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import FakeKubelet, Harness, scale, until

STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


async def pod_names(client: Client) -> list[str]:
    pods = (await client.list("pods", "default", label_selector="app=db")).items
    return sorted(p.metadata.name for p in pods if not p.metadata.HasField("deletion_timestamp"))


def names_are(client: Client, expected: list[str]):
    async def check() -> bool:
        return await pod_names(client) == expected

    return check


async def test_ordered_creation_stable_identity_and_claims(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    kubelet.auto_ready = False
    harness.add(StatefulSetController)
    await harness.start()
    await client.create(manifest(STS))
    await until(names_are(client, ["db-0"]))
    await asyncio.sleep(0.3)
    assert await pod_names(client) == ["db-0"]  # db-1 waits for db-0 to be Ready
    for ordinal in range(3):
        await until(names_are(client, [f"db-{i}" for i in range(ordinal + 1)]))
        await until(lambda o=ordinal: _bound(client, f"db-{o}"))
        await kubelet.set_status("default", f"db-{ordinal}", phase="Running", ready=True)
    pod = await client.get("pods", "db-1", "default")
    assert (pod.spec.hostname, pod.spec.subdomain) == ("db-1", "db")
    assert [v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.name == "data"] == [
        "data-db-1"
    ]
    claims = {
        c.metadata.name: c.metadata.uid
        for c in (await client.list("persistentvolumeclaims", "default")).items
    }
    assert set(claims) == {"data-db-0", "data-db-1", "data-db-2"}
    # A deleted pod comes back with the same name and the same claim.
    kubelet.auto_ready = True
    await client.delete("pods", "db-1", "default")

    async def back() -> bool:
        try:
            p = await client.get("pods", "db-1", "default")
        except Exception:
            return False
        return p.metadata.uid != pod.metadata.uid and p.status.phase == "Running"

    await until(back)
    again = {
        c.metadata.name: c.metadata.uid
        for c in (await client.list("persistentvolumeclaims", "default")).items
    }
    assert again == claims
    # Scale down from the highest ordinal; claims stay.
    await scale(client, "statefulsets", "db", 1)
    await until(names_are(client, ["db-0"]))
    assert len((await client.list("persistentvolumeclaims", "default")).items) == 3


async def _bound(client: Client, name: str) -> bool:
    try:
        p = await client.get("pods", name, "default")
    except Exception:
        return False
    return bool(p.spec.node_name)


async def test_parallel_and_reverse_ordinal_rolling_update(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(StatefulSetController)
    await harness.start()
    sts = manifest(STS)
    sts.spec.pod_management_policy = "Parallel"
    await client.create(sts)

    async def ready() -> bool:
        s = (await client.get("statefulsets", "db", "default")).status
        return s.ready_replicas == 3 and s.updated_replicas == 3 and s.current_revision == s.update_revision

    await until(ready)
    order: list[str] = []
    seen_uids = {p.metadata.name: p.metadata.uid for p in (await client.list("pods", "default")).items}
    await client.patch(
        "statefulsets",
        "db",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "pinnace/busybox:2.0"}]}}}},
        "default",
    )

    async def all_new() -> bool:
        pods = (await client.list("pods", "default", label_selector="app=db")).items
        for p in pods:
            if seen_uids.get(p.metadata.name) != p.metadata.uid and p.metadata.name not in order:
                order.append(p.metadata.name)
        return len(pods) == 3 and all(p.spec.containers[0].image == "pinnace/busybox:2.0" for p in pods)

    await until(all_new, timeout=20, interval=0.005)
    assert order == ["db-2", "db-1", "db-0"]
    await until(ready)
