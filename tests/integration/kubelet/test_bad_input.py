"""A pod naming a missing image, secret, configMap or claim waits with the right reason and
an Event, and recovers by itself when the missing object appears."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from pathlib import Path

import pytest

from pinnace.api.core.v1 import core_pb2
from tests.integration.kubelet.harness import Node, container, running

pytestmark = pytest.mark.integration


def _waiting(pod) -> str:
    statuses = pod.status.container_statuses
    return statuses[0].state.waiting.reason if statuses else ""


async def test_missing_objects_then_recovery(node: Node) -> None:
    client = node.client
    image = f"pinnace/pkl-missing-{secrets.token_hex(3)}:1.0"
    await client.create(node.pod("noimage", container("c", "sleep", "600", image=image)))
    env = container("c", "sh", "-c", 'echo "$PASSWORD" > /tmp/p; sleep 600')
    env.env.add(name="PASSWORD").value_from.secret_key_ref.CopyFrom(
        core_pb2.SecretKeySelector(name="creds", key="password")
    )
    await client.create(node.pod("nosecret", env))
    cm = container("c", "sleep", "600")
    cm.volume_mounts.add(name="conf", mount_path="/etc/conf")
    pod = node.pod("nocm", cm)
    pod.spec.volumes.add(name="conf").config_map.name = "settings"
    await client.create(pod)
    claim = container("c", "sleep", "600")
    claim.volume_mounts.add(name="data", mount_path="/data")
    pod = node.pod("noclaim", claim)
    pod.spec.volumes.add(name="data").persistent_volume_claim.claim_name = "data"
    await client.create(pod)

    await node.wait_pod("noimage", lambda p: _waiting(p) in ("ErrImagePull", "ImagePullBackOff"))
    await node.wait_pod("nosecret", lambda p: _waiting(p) == "CreateContainerConfigError")
    await node.wait_pod("nocm", lambda p: p.status.phase == "Pending" and _waiting(p) == "ContainerCreating")
    await node.wait_pod(
        "noclaim", lambda p: p.status.phase == "Pending" and _waiting(p) == "ContainerCreating"
    )
    events = {(e.involved_object.name, e.reason) for e in (await client.list("events", "default")).items}
    assert ("noimage", "Failed") in events and ("nocm", "FailedMount") in events
    assert ("nosecret", "Failed") in events and ("noclaim", "FailedMount") in events

    node.docker.api.tag("pinnace/busybox:1.0", image.split(":", maxsplit=1)[0], "1.0")
    hostdir = Path(tempfile.mkdtemp(prefix="pkl-pv-", dir=node.tmp))
    try:
        secret = core_pb2.Secret(data={"password": b"s3cret"})
        secret.metadata.name, secret.metadata.namespace = "creds", "default"
        await client.create(secret)
        config = core_pb2.ConfigMap(data={"mode": "fast"})
        config.metadata.name, config.metadata.namespace = "settings", "default"
        await client.create(config)
        pv = core_pb2.PersistentVolume()
        pv.metadata.name = f"pv-{node.suffix}"
        pv.spec.capacity["storage"] = "1Gi"
        pv.spec.access_modes.append("ReadWriteOnce")
        pv.spec.host_path.path = str(hostdir)
        await client.create(pv)
        pvc = core_pb2.PersistentVolumeClaim()
        pvc.metadata.name, pvc.metadata.namespace = "data", "default"
        pvc.spec.access_modes.append("ReadWriteOnce")
        pvc.spec.resources.requests["storage"] = "1Gi"
        pvc.spec.volume_name = pv.metadata.name
        created = await client.create(pvc)
        created.status.phase = "Bound"
        await client.update_status(created)

        for name in ("noimage", "nosecret", "nocm", "noclaim"):
            await node.wait_pod(name, running, timeout=90)
        pod = await client.get("pods", "nosecret", "default")
        cid = pod.status.container_statuses[0].container_id.split("://")[1]
        out = node.docker.api.exec_start(node.docker.api.exec_create(cid, ["cat", "/tmp/p"]))
        assert out.strip() == b"s3cret"
        pod = await client.get("pods", "nocm", "default")
        cid = pod.status.container_statuses[0].container_id.split("://")[1]
        assert (
            node.docker.api.exec_start(node.docker.api.exec_create(cid, ["cat", "/etc/conf/mode"])) == b"fast"
        )
        config = await client.get("configmaps", "settings", "default")
        config.data["mode"] = "slow"
        await client.update(config)
        for _ in range(60):
            out = node.docker.api.exec_start(node.docker.api.exec_create(cid, ["cat", "/etc/conf/mode"]))
            if out == b"slow":
                break
            await asyncio.sleep(0.5)
        assert out == b"slow"
        pod = await client.get("pods", "noclaim", "default")
        cid = pod.status.container_statuses[0].container_id.split("://")[1]
        node.docker.api.exec_start(node.docker.api.exec_create(cid, ["sh", "-c", "echo kept > /data/f"]))
        assert (hostdir / "f").read_text() == "kept\n"
    finally:
        for pod in ("noimage", "nosecret", "nocm", "noclaim"):
            await client.delete("pods", pod, "default")
        node.stop_kubelet()
        node.remove_containers()
        with contextlib.suppress(Exception):
            node.docker.api.remove_image(image)
