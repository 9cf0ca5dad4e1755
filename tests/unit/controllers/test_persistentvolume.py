from __future__ import annotations

from services.client.client import Client
from services.controllers.persistentvolume import PersistentVolumeController
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import Harness, until


def pv(
    name: str,
    size: str,
    mode: str = "ReadWriteOnce",
    klass: str = "",
    policy: str = "Retain",
    labels: str = "{}",
):
    return manifest(f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}, labels: {labels}}}
spec:
  capacity: {{storage: {size}}}
  accessModes: [{mode}]
  storageClassName: "{klass}"
  persistentVolumeReclaimPolicy: {policy}
  hostPath: {{path: /tmp/{name}}}
""")


def pvc(name: str, size: str, mode: str = "ReadWriteOnce", klass: str | None = "", selector: str = ""):
    klass_line = f'  storageClassName: "{klass}"\n' if klass is not None else ""
    return manifest(f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}, namespace: default}}
spec:
  accessModes: [{mode}]
  resources: {{requests: {{storage: {size}}}}}
{klass_line}{selector}""")


def bound(client: Client, claim: str):
    async def check() -> bool:
        c = await client.get("persistentvolumeclaims", claim, "default")
        return c.status.phase == "Bound" and bool(c.spec.volume_name)

    return check


async def test_binds_the_smallest_fitting_volume_and_reclaims(client: Client, harness: Harness) -> None:
    for volume in (
        pv("big", "10Gi"),
        pv("small", "1Gi"),
        pv("rox", "1Gi", mode="ReadOnlyMany"),
        pv("gone", "1Gi", policy="Delete"),
    ):
        await client.create(volume)
    harness.add(PersistentVolumeController)
    await harness.start()
    await client.create(pvc("data", "500Mi"))
    await until(bound(client, "data"))
    claim = await client.get("persistentvolumeclaims", "data", "default")
    assert claim.spec.volume_name in ("small", "gone")
    assert claim.status.capacity["storage"] == "1Gi"
    volume = await client.get("persistentvolumes", claim.spec.volume_name)
    assert volume.status.phase == "Bound" and volume.spec.claim_ref.uid == claim.metadata.uid
    # A claim nothing satisfies stays Pending.
    await client.create(pvc("huge", "100Gi"))
    await until(lambda: _phase(client, "huge", "Pending"))
    # Reclaim on claim deletion: Retain -> Released, Delete -> the volume goes.
    name = claim.spec.volume_name
    await client.delete("persistentvolumeclaims", "data", "default")
    if name == "small":

        async def released() -> bool:
            return (await client.get("persistentvolumes", "small")).status.phase == "Released"

        await until(released)
    else:

        async def deleted() -> bool:
            return not any(v.metadata.name == "gone" for v in (await client.list("persistentvolumes")).items)

        await until(deleted)


async def _phase(client: Client, claim: str, phase: str) -> bool:
    return (await client.get("persistentvolumeclaims", claim, "default")).status.phase == phase


async def test_selector_and_class_must_match(client: Client, harness: Harness) -> None:
    await client.create(pv("fast-1", "5Gi", klass="fast", labels="{tier: gold}"))
    await client.create(pv("fast-2", "5Gi", klass="fast", labels="{tier: bronze}"))
    harness.add(PersistentVolumeController)
    await harness.start()
    await client.create(
        pvc("gold", "1Gi", klass="fast", selector="  selector: {matchLabels: {tier: gold}}\n")
    )
    await until(bound(client, "gold"))
    assert (await client.get("persistentvolumeclaims", "gold", "default")).spec.volume_name == "fast-1"


async def test_host_path_provisioning_for_the_default_class(client: Client, harness: Harness) -> None:
    await client.create(
        manifest("""
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: pinnace.io/host-path
""")
    )
    harness.add(PersistentVolumeController)
    await harness.start()
    await client.create(pvc("auto", "2Gi", klass=None))
    await until(bound(client, "auto"))
    claim = await client.get("persistentvolumeclaims", "auto", "default")
    volume = await client.get("persistentvolumes", claim.spec.volume_name)
    assert volume.spec.storage_class_name == "standard"
    assert volume.spec.host_path.path.endswith(claim.metadata.uid)
    assert volume.spec.persistent_volume_reclaim_policy == "Delete"
    await client.delete("persistentvolumeclaims", "auto", "default")

    async def volume_deleted() -> bool:
        return not (await client.list("persistentvolumes")).items

    await until(volume_deleted)
