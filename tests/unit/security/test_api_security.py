"""Authentication and authorisation end to end: a TLS apiserver with client certificates,
a bearer-token listener, RBAC and the Node authoriser. Every refusal changes nothing."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pinnace.api.core.v1 import core_pb2
from services.client import errors
from services.client.client import Client
from services.client.config import Credentials
from services.machinery import jwt, pki
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.security.conftest import Cluster


async def _namespace(admin: Client, name: str) -> None:
    await admin.create(manifest(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"))


async def test_admin_can_do_everything(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    await admin.create(pod("p"))
    assert [p.metadata.name for p in (await admin.list("pods", "default")).items] == ["p"]
    roles = {r.metadata.name for r in (await admin.list("clusterroles")).items}
    assert {"cluster-admin", "admin", "edit", "view", "system:kube-scheduler"} <= roles
    await admin.close()


async def test_unauthenticated_and_foreign_credentials_are_refused(cluster: Cluster) -> None:
    base = cluster.credentials("admin")
    bare = Credentials(base.server, base.ca_pem).client(timeout=5)
    with pytest.raises(errors.APIStatusError) as caught:
        await bare.list("pods")
    assert caught.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)
    foreign = cluster.as_user("mallory", ("system:masters",), ca=pki.new_ca())
    with pytest.raises(errors.APIStatusError) as caught:
        await foreign.list("pods")
    assert caught.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)
    no_token = cluster.with_token("")
    with pytest.raises(errors.UnauthorizedError):
        await no_token.list("pods")
    bad_token = cluster.with_token("not-a-token")
    with pytest.raises(errors.UnauthorizedError):
        await bad_token.list("pods")
    for client in (bare, foreign, no_token, bad_token):
        await client.close()


async def test_rbac_grants_exactly_what_is_bound(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    await _namespace(admin, "dev")
    alice = cluster.as_user("alice")
    before = (await admin.list("pods")).resource_version
    with pytest.raises(errors.ForbiddenError, match='User "alice" cannot create resource "pods"'):
        await alice.create(pod("sneaky", namespace="dev"))
    with pytest.raises(errors.ForbiddenError):
        await alice.list("pods", "dev")
    assert (await admin.list("pods")).resource_version == before
    await admin.create(
        manifest("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-edit, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}]
""")
    )
    await alice.create(pod("allowed", namespace="dev"))
    assert [p.metadata.name for p in (await alice.list("pods", "dev")).items] == ["allowed"]
    with pytest.raises(errors.ForbiddenError, match='in the namespace "default"'):
        await alice.create(pod("elsewhere"))
    with pytest.raises(errors.ForbiddenError):
        await alice.list("nodes")
    with pytest.raises(errors.ForbiddenError):
        await alice.create(
            manifest("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: escalate, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}]
""")
        )
    await alice.close()
    await admin.close()


async def test_static_token_user(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    await admin.create(
        manifest("""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: team-c-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: Group, name: team-c, apiGroup: rbac.authorization.k8s.io}]
""")
    )
    carol = cluster.with_token("s3cret-token")
    await carol.list("pods", "default")
    with pytest.raises(errors.ForbiddenError, match='User "carol" cannot create'):
        await carol.create(pod("nope"))
    await carol.close()
    await admin.close()


async def test_service_account_tokens(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    account = await admin.create(
        manifest("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: builder}\n")
    )
    await admin.create(
        manifest("""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list, watch]}]
---
""")
    )
    await admin.create(
        manifest("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: builder-reads}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: builder, namespace: default}]
""")
    )
    await admin.create(pod("visible"))
    claims = jwt.ServiceAccountClaims("default", "builder", account.metadata.uid)
    builder = cluster.with_token(cluster.sign(claims))
    assert [p.metadata.name for p in (await builder.list("pods", "default")).items] == ["visible"]
    with pytest.raises(errors.ForbiddenError, match="system:serviceaccount:default:builder"):
        await builder.delete("pods", "visible", "default")
    with pytest.raises(errors.ForbiddenError):
        await builder.list("secrets", "default")
    expired = cluster.with_token(cluster.sign(claims, lifetime=1, now=1_000_000))
    with pytest.raises(errors.UnauthorizedError, match="expired"):
        await expired.list("pods", "default")
    forged_key = jwt.load_private_key(pki.new_signing_key())
    forged = cluster.with_token(jwt.sign(forged_key, claims))
    with pytest.raises(errors.UnauthorizedError, match="signature"):
        await forged.list("pods", "default")
    await admin.delete("serviceaccounts", "builder", "default")
    await cluster.until_cached("serviceaccounts", "default", "builder", present=False)
    with pytest.raises(errors.UnauthorizedError, match="no longer exists"):
        await builder.list("pods", "default")
    for client in (builder, expired, forged, admin):
        await client.close()


async def test_node_authorizer_confines_kubelets(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    await admin.create(
        manifest("apiVersion: v1\nkind: Secret\nmetadata: {name: for-a}\nstringData: {k: v}\n")
    )
    await admin.create(
        manifest("apiVersion: v1\nkind: Secret\nmetadata: {name: for-b}\nstringData: {k: v}\n")
    )
    pod_a = pod("on-a", node="node-a")
    pod_a.spec.volumes.add(name="s").secret.secret_name = "for-a"
    pod_a.spec.containers[0].volume_mounts.add(name="s", mount_path="/s")
    await admin.create(pod_a)
    pod_b = pod("on-b", node="node-b")
    pod_b.spec.volumes.add(name="s").secret.secret_name = "for-b"
    pod_b.spec.containers[0].volume_mounts.add(name="s", mount_path="/s")
    await admin.create(pod_b)
    await cluster.until_cached("pods", "default", "on-b")
    kubelet_a = cluster.client("kubelet-node-a")
    mine = await kubelet_a.list("pods", field_selector="spec.nodeName=node-a")
    assert [p.metadata.name for p in mine.items] == ["on-a"]
    with pytest.raises(errors.ForbiddenError):
        await kubelet_a.list("pods")
    with pytest.raises(errors.ForbiddenError):
        await kubelet_a.list("pods", field_selector="spec.nodeName=node-b")
    with pytest.raises(errors.ForbiddenError):
        await kubelet_a.get("pods", "on-b", "default")
    assert (await kubelet_a.get("secrets", "for-a", "default")).data["k"] == b"v"
    with pytest.raises(errors.ForbiddenError):
        await kubelet_a.get("secrets", "for-b", "default")
    own = await kubelet_a.get("pods", "on-a", "default")
    own.status.phase = "Running"
    assert (await kubelet_a.update_status(own)).status.phase == "Running"
    other = await admin.get("pods", "on-b", "default")
    other.status.phase = "Failed"
    with pytest.raises(errors.ForbiddenError):
        await kubelet_a.update_status(other)
    node = core_pb2.Node()
    node.metadata.name = "node-a"
    await kubelet_a.create(node)
    node_b = core_pb2.Node()
    node_b.metadata.name = "node-b"
    with pytest.raises(errors.ForbiddenError):
        await kubelet_a.create(node_b)
    await kubelet_a.close()
    await admin.close()


async def test_each_call_on_a_pipeline_stream_is_authenticated_and_authorised(cluster: Cluster) -> None:
    """A Pipeline stream presents its credentials once (one connection, one set of metadata), but
    every call on it is authenticated from them and authorised by itself, as its unary call
    would be: a token revoked mid-stream stops working at the next call, and a refused call
    changes nothing."""
    admin = cluster.client("admin")
    await _namespace(admin, "dev")
    before = (await admin.list("pods")).resource_version
    bad_token = cluster.with_token("not-a-token")
    bad_token.use_pipeline()
    with pytest.raises(errors.UnauthorizedError):
        await bad_token.create(pod("intruder", namespace="dev"))
    carol = cluster.with_token("s3cret-token")  # a valid token with no role yet
    carol.use_pipeline()
    with pytest.raises(errors.ForbiddenError, match='User "carol" cannot create resource "pods"'):
        await carol.create(pod("early", namespace="dev"))
    assert (await admin.list("pods")).resource_version == before
    await admin.create(
        manifest("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: carol-edit, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: User, name: carol, apiGroup: rbac.authorization.k8s.io}]
""")
    )
    allowed, refused = await asyncio.gather(
        carol.create(pod("granted", namespace="dev")),
        carol.create(pod("elsewhere")),
        return_exceptions=True,
    )
    assert allowed.metadata.name == "granted"  # type: ignore[union-attr]
    assert isinstance(refused, errors.ForbiddenError) and 'namespace "default"' in str(refused)
    assert carol._pipeline is not None and carol._pipeline.supported is True

    # A service account's token on an open stream: good until the account is deleted.
    account = await admin.create(
        manifest("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: deployer, namespace: dev}\n")
    )
    await admin.create(
        manifest("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer-edit, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: ServiceAccount, name: deployer, namespace: dev}]
""")
    )
    deployer = cluster.with_token(
        cluster.sign(jwt.ServiceAccountClaims("dev", "deployer", account.metadata.uid))
    )
    deployer.use_pipeline()
    await deployer.create(pod("deployed", namespace="dev"))
    stream = deployer._pipeline._stream if deployer._pipeline is not None else None
    await admin.delete("serviceaccounts", "deployer", "dev")
    await cluster.until_cached("serviceaccounts", "dev", "deployer", present=False)
    with pytest.raises(errors.UnauthorizedError, match="no longer exists"):
        await deployer.create(pod("after-revocation", namespace="dev"))
    assert stream is not None and deployer._pipeline is not None and deployer._pipeline._stream is stream
    names = sorted(p.metadata.name for p in (await admin.list("pods")).items)
    assert names == ["deployed", "granted"]
    for client in (bad_token, carol, deployer, admin):
        await client.close()
