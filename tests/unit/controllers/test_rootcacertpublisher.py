from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.errors import NotFoundError
from services.controllers.rootcacertpublisher import (
    CONFIG_MAP,
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    RootCACertPublisher,
)
from services.machinery import pki
from tests.unit.controllers.fakes import Harness, fast_settings, until

CA = pki.new_ca().cert_pem


async def published(client: Client, namespace: str) -> core_pb2.ConfigMap | None:
    try:
        found = await client.get("configmaps", CONFIG_MAP, namespace)
    except NotFoundError:
        return None
    assert isinstance(found, core_pb2.ConfigMap)
    return found


def is_current(config_map: core_pb2.ConfigMap | None) -> bool:
    return (
        config_map is not None
        and dict(config_map.data) == {"ca.crt": CA.decode()}
        and not config_map.binary_data
        and config_map.metadata.annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION
    )


async def start(client: Client) -> Harness:
    settings = fast_settings()
    settings.root_ca = CA
    harness = Harness(client, settings)
    harness.add(RootCACertPublisher)
    await harness.start()
    return harness


async def test_every_namespace_gets_the_ca(client: Client) -> None:
    harness = await start(client)
    try:
        for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
            await until(lambda ns=namespace: published(client, ns), timeout=10)
            assert is_current(await published(client, namespace))
        fresh = core_pb2.Namespace()
        fresh.metadata.name = "team"
        await client.create(fresh)

        async def team_has_it() -> bool:
            return is_current(await published(client, "team"))

        await until(team_has_it)
    finally:
        await harness.stop()


async def test_edits_and_deletion_are_repaired(client: Client) -> None:
    harness = await start(client)
    try:

        async def current() -> bool:
            return is_current(await published(client, "default"))

        await until(current)
        tampered = await published(client, "default")
        assert tampered is not None
        tampered.data["ca.crt"] = "-----BEGIN CERTIFICATE-----\nnot ours\n"
        tampered.data["extra"] = "x"
        del tampered.metadata.annotations[DESCRIPTION_ANNOTATION]
        await client.update(tampered)
        await until(current)
        repaired = await published(client, "default")
        assert repaired is not None and "extra" not in repaired.data
        await client.delete("configmaps", CONFIG_MAP, "default")
        await until(current)
    finally:
        await harness.stop()


async def test_other_config_maps_are_left_alone(client: Client) -> None:
    harness = await start(client)
    try:
        mine = core_pb2.ConfigMap()
        mine.metadata.name, mine.metadata.namespace = "settings", "default"
        mine.data["ca.crt"] = "my own"
        await client.create(mine)

        async def current() -> bool:
            return is_current(await published(client, "default"))

        await until(current)
        mine = await client.get("configmaps", "settings", "default")
        mine.data["ca.crt"] = "changed"
        await client.update(mine)
        # A repair made after that edit shows the controller has seen it.
        await client.delete("configmaps", CONFIG_MAP, "default")
        await until(current)
        assert dict((await client.get("configmaps", "settings", "default")).data) == {"ca.crt": "changed"}
    finally:
        await harness.stop()
