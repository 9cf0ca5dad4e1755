from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.controllers.garbagecollector import GarbageCollector
from services.controllers.namespace import NamespaceController
from services.controllers.replicaset import ReplicationControllerController
from services.controllers.serviceaccount import ServiceAccountController
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import FakeKubelet, Harness, until
from tests.unit.controllers.test_replicaset import RC


async def _namespace_exists(client: Client, name: str) -> bool:
    try:
        await client.get("namespaces", name)
    except Exception:
        return False
    return True


async def test_deleting_a_namespace_removes_its_content_then_the_namespace(
    client: Client, harness: Harness, kubelet: FakeKubelet
) -> None:
    harness.add(NamespaceController)
    harness.add(ReplicationControllerController)
    harness.add(GarbageCollector)
    harness.add(ServiceAccountController)
    await harness.start()
    ns = core_pb2.Namespace()
    ns.metadata.name = "team"
    await client.create(ns)

    async def has_default_sa() -> bool:
        return bool((await client.list("serviceaccounts", "team")).items)

    await until(has_default_sa)
    rc = manifest(RC)
    rc.metadata.namespace = "team"
    await client.create(rc)
    await client.create(
        manifest("""
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: team}
data: {a: b}
""")
    )

    async def pods_running() -> bool:
        pods = (await client.list("pods", "team")).items
        return len(pods) == 2 and all(p.status.phase == "Running" for p in pods)

    await until(pods_running)
    await client.delete("namespaces", "team")
    got = await client.get("namespaces", "team")
    assert got.status.phase == "Terminating"

    async def gone() -> bool:
        return not await _namespace_exists(client, "team")

    await until(gone)
    assert not (await client.list("pods", "team")).items


async def test_default_service_account_is_recreated(client: Client, harness: Harness) -> None:
    harness.add(ServiceAccountController)
    await harness.start()

    async def has_default() -> bool:
        try:
            await client.get("serviceaccounts", "default", "kube-system")
        except Exception:
            return False
        return True

    await until(has_default)
    await client.delete("serviceaccounts", "default", "kube-system")
    await until(has_default)
