"""serviceaccounts/token end to end on a TLS apiserver: the token's claims, its use on the
token listener, its revocation with its pod, the request's validation, and what a kubelet may
ask for (Node authoriser + NodeRestriction). Every refusal issues nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from pinnace.api.authentication.v1 import authentication_pb2
from pinnace.api.core.v1 import core_pb2
from services.client import errors
from services.client.client import Client
from services.machinery import jwt
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.security.conftest import Cluster

ISSUER = jwt.DEFAULT_BOUND_ISSUER


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def bound_to(pod_obj: core_pb2.Pod, **spec: Any) -> authentication_pb2.TokenRequest:
    request = authentication_pb2.TokenRequest()
    ref = request.spec.bound_object_ref
    ref.kind, ref.api_version, ref.name, ref.uid = "Pod", "v1", pod_obj.metadata.name, pod_obj.metadata.uid
    for key, value in spec.items():
        setattr(request.spec, key, value)
    return request


async def account_and_pod(admin: Client, name: str = "builder", node: str = "") -> core_pb2.Pod:
    await admin.create(manifest(f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}}}\n"))
    body = pod(f"{name}-pod", node=node)
    body.spec.service_account_name = name
    created = await admin.create(body)
    assert isinstance(created, core_pb2.Pod)
    return created


async def test_bound_token_claims_and_use(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    bound_pod = await account_and_pod(admin)
    account = await admin.get("serviceaccounts", "builder", "default")
    answer = await admin.create_token("builder", "default", bound_to(bound_pod))
    claims = claims_of(answer.status.token)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == [ISSUER]
    assert claims["sub"] == "system:serviceaccount:default:builder"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"] == {
        "namespace": "default",
        "serviceaccount": {"name": "builder", "uid": account.metadata.uid},
        "pod": {"name": "builder-pod", "uid": bound_pod.metadata.uid},
    }
    assert answer.spec.expiration_seconds == 3600 and list(answer.spec.audiences) == [ISSUER]
    assert answer.status.expiration_timestamp.seconds == claims["exp"]
    assert answer.metadata.name == "builder" and answer.metadata.namespace == "default"
    # The token authenticates as the account, with the groups RBAC binds to.
    await admin.create(
        manifest("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: builder-views}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: Group, name: "system:serviceaccounts:default"}]
""")
    )
    holder = cluster.with_token(answer.status.token)
    assert "builder-pod" in [p.metadata.name for p in (await holder.list("pods", "default")).items]
    with pytest.raises(errors.ForbiddenError, match="system:serviceaccount:default:builder"):
        await holder.list("secrets", "default")
    await holder.close()
    await admin.close()


async def test_token_dies_with_its_pod(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    bound_pod = await account_and_pod(admin)
    await admin.create(
        manifest("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: builder-views}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: builder, namespace: default}]
""")
    )
    token = (await admin.create_token("builder", "default", bound_to(bound_pod))).status.token
    holder = cluster.with_token(token)
    await holder.list("pods", "default")
    await admin.delete("pods", "builder-pod", "default")
    await cluster.until_cached("pods", "default", "builder-pod", present=False)
    with pytest.raises(errors.UnauthorizedError, match="service account token has been invalidated"):
        await holder.list("pods", "default")
    # A new pod of the same name has another uid: the old token stays dead.
    replacement = pod("builder-pod")
    replacement.spec.service_account_name = "builder"
    await admin.create(replacement)
    await cluster.until_cached("pods", "default", "builder-pod")
    with pytest.raises(errors.UnauthorizedError, match=r"pod UID \(.+\) does not match claim"):
        await holder.list("pods", "default")
    await holder.close()
    await admin.close()


async def test_unbound_token_and_audiences(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    await account_and_pod(admin)
    request = authentication_pb2.TokenRequest()
    request.spec.expiration_seconds = 600
    answer = await admin.create_token("builder", "default", request)
    claims = claims_of(answer.status.token)
    assert "pod" not in claims["kubernetes.io"] and claims["exp"] - claims["iat"] == 600
    # A token for another audience is not accepted by the apiserver itself.
    other = authentication_pb2.TokenRequest()
    other.spec.audiences.append("vault")
    vault_token = (await admin.create_token("builder", "default", other)).status.token
    assert claims_of(vault_token)["aud"] == ["vault"]
    holder = cluster.with_token(vault_token)
    with pytest.raises(errors.UnauthorizedError, match="audiences"):
        await holder.list("pods", "default")
    await holder.close()
    await admin.close()


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (
            lambda r, p: setattr(r.spec, "expiration_seconds", 599),
            errors.InvalidError,
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes",
        ),
        (
            lambda r, p: setattr(r.spec.bound_object_ref, "name", "ghost"),
            errors.NotFoundError,
            'pods "ghost" not found',
        ),
        (
            lambda r, p: setattr(r.spec.bound_object_ref, "uid", "not-the-uid"),
            errors.ConflictError,
            r"the UID in the bound object reference \(not-the-uid\) does not match",
        ),
        (
            lambda r, p: setattr(r.spec.bound_object_ref, "kind", "Node"),
            errors.BadRequestError,
            "cannot bind token to object of type /v1, Kind=Node",
        ),
        (
            lambda r, p: setattr(r.metadata, "name", "someone-else"),
            errors.InvalidError,
            'metadata.name: Invalid value: "someone-else": must match the service account name',
        ),
    ],
)
async def test_bad_requests_issue_nothing(cluster: Cluster, mutate: Any, error: type, message: str) -> None:
    admin = cluster.client("admin")
    bound_pod = await account_and_pod(admin)
    request = bound_to(bound_pod)
    mutate(request, bound_pod)
    with pytest.raises(error, match=message):
        await admin.create_token("builder", "default", request)
    await admin.close()


async def test_missing_account_and_foreign_pod(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    bound_pod = await account_and_pod(admin)
    with pytest.raises(errors.NotFoundError, match='serviceaccounts "ghost" not found'):
        await admin.create_token("ghost", "default")
    await admin.create(manifest("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: other}\n"))
    with pytest.raises(errors.BadRequestError, match="to pod running with different serviceaccount name"):
        await admin.create_token("other", "default", bound_to(bound_pod))
    await admin.close()


async def test_kubelet_gets_tokens_only_for_its_own_pods(cluster: Cluster) -> None:
    admin = cluster.client("admin")
    mine = await account_and_pod(admin, "web", node="node-a")
    theirs = await account_and_pod(admin, "db", node="node-b")
    kubelet = cluster.client("kubelet-node-a")
    answer = await kubelet.create_token("web", "default", bound_to(mine))
    assert claims_of(answer.status.token)["kubernetes.io"]["pod"]["name"] == "web-pod"
    with pytest.raises(errors.ForbiddenError, match='cannot create resource "serviceaccounts/token"'):
        await kubelet.create_token("db", "default", bound_to(theirs))
    with pytest.raises(errors.ForbiddenError, match="node requested token not bound to a pod"):
        await kubelet.create_token("web", "default")
    # An account its pods use, bound to a pod of another node.
    elsewhere = pod("web-elsewhere", node="node-b")
    elsewhere.spec.service_account_name = "web"
    elsewhere = await admin.create(elsewhere)
    with pytest.raises(errors.ForbiddenError, match="bound to a pod scheduled on a different node"):
        await kubelet.create_token("web", "default", bound_to(elsewhere))
    no_uid = bound_to(mine)
    no_uid.spec.bound_object_ref.uid = ""
    with pytest.raises(errors.ForbiddenError, match="pod binding without a uid"):
        await kubelet.create_token("web", "default", no_uid)
    # Reading the account itself is not a kubelet's business.
    with pytest.raises(errors.ForbiddenError):
        await kubelet.get("serviceaccounts", "web", "default")
    await kubelet.close()
    await admin.close()
