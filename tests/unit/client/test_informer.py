import asyncio

from services.apiserver.server import APIServer
from services.client.client import Client
from services.client.informer import Informer
from tests.unit.apiserver.helpers import pod


async def _until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_informer_caches_and_notifies(client: Client) -> None:
    await client.create(pod("before", labels={"app": "web"}, node="n1"))
    seen: list[tuple[str, str]] = []
    informer = Informer(
        client, "pods", label_selector="app=web", indexers={"node": lambda p: [p.spec.node_name]}
    )  # type: ignore[attr-defined]
    informer.add_handlers(
        on_add=lambda o: seen.append(("add", o.metadata.name)),
        on_update=lambda old, new: seen.append(("update", new.metadata.name)),
        on_delete=lambda o: seen.append(("delete", o.metadata.name)),
    )
    informer.start()
    try:
        await informer.wait_synced(5)
        await client.create(pod("after", labels={"app": "web"}, node="n2"))
        await client.create(pod("ignored", labels={"app": "db"}))
        await client.patch("pods", "before", {"metadata": {"annotations": {"touched": "yes"}}}, "default")
        await client.delete("pods", "after", "default", grace_period_seconds=0)
        await _until(lambda: ("delete", "after") in seen)
        assert seen == [("add", "before"), ("add", "after"), ("update", "before"), ("delete", "after")]
        assert [p.metadata.name for p in informer.store.by_index("node", "n1")] == ["before"]
        assert informer.store.by_index("node", "n2") == []
        assert [p.metadata.name for p in informer.store.by_index("namespace", "default")] == ["before"]
    finally:
        await informer.stop()


async def test_informer_relists_after_expiry(client: Client, server: APIServer) -> None:
    informer = Informer(client, "pods")
    deleted: list[str] = []
    informer.add_handlers(on_delete=lambda o: deleted.append(o.metadata.name))
    await client.create(pod("gone"))
    informer.start()
    try:
        await informer.wait_synced(5)
        await informer.stop()
        await client.delete("pods", "gone", "default")
        await client.create(pod("fresh"))
        # The informer resumes from a revision the server can no longer serve: it must relist.
        informer.resource_version = "1"
        await server.storage.compact(await server.storage.current_revision())
        server.registry.caches["pods"].window_start = 10**9
        informer.start()
        await _until(lambda: "fresh" in {p.metadata.name for p in informer.store.list()})
        assert deleted == ["gone"]
    finally:
        await informer.stop()
