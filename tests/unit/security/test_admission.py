"""Security admission plugins: NodeRestriction, SecurityContextDeny, AlwaysDeny."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.client import errors
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.security.conftest import Cluster, start_cluster


def mirror(name: str, node: str) -> object:
    obj = pod(name, node=node)
    obj.metadata.annotations["kubernetes.io/config.mirror"] = "hash"
    return obj


async def test_node_restriction(cluster: Cluster) -> None:
    kubelet = cluster.client("kubelet-node-a")
    await kubelet.create(mirror("static-a", "node-a"))
    with pytest.raises(errors.ForbiddenError, match="can only create mirror pods"):
        await kubelet.create(pod("plain", node="node-a"))
    with pytest.raises(errors.ForbiddenError, match=r"spec\.nodeName set to itself"):
        await kubelet.create(mirror("static-b", "node-b"))
    bad = mirror("static-secret", "node-a")
    bad.spec.volumes.add(name="s").secret.secret_name = "x"
    bad.spec.containers[0].volume_mounts.add(name="s", mount_path="/s")
    with pytest.raises(errors.ForbiddenError, match="may not reference"):
        await kubelet.create(bad)
    node = manifest("apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\n")
    node.metadata.labels["node-restriction.kubernetes.io/trusted"] = "yes"
    with pytest.raises(errors.ForbiddenError, match="not allowed to modify labels"):
        await kubelet.create(node)
    admin = cluster.client("admin")
    names = [p.metadata.name for p in (await admin.list("pods", "default")).items]
    assert names == ["static-a"]
    await kubelet.close()
    await admin.close()


async def test_security_context_deny_is_opt_in(tmp_path: Path) -> None:
    running = await start_cluster(tmp_path, ["NamespaceLifecycle", "NodeRestriction", "SecurityContextDeny"])
    try:
        admin = running.client("admin")
        root = pod("as-root")
        root.spec.containers[0].security_context.run_as_user = 0
        with pytest.raises(errors.ForbiddenError, match="RunAsUser is forbidden"):
            await admin.create(root)
        await admin.create(pod("plain"))
        await admin.close()
    finally:
        await running.server.stop(grace=0)


async def test_always_deny_admits_nothing(tmp_path: Path) -> None:
    running = await start_cluster(tmp_path, ["AlwaysDeny"])
    try:
        admin = running.client("admin")
        with pytest.raises(errors.ForbiddenError, match="AlwaysDeny"):
            await admin.create(pod("p"))
        assert (await admin.list("pods", "default")).items == []
        await admin.close()
    finally:
        await running.server.stop(grace=0)
