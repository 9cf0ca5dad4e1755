"""Joining with a token over TLS: cluster-info discovery pinned by the CA hash, bootstrap-token
authentication, CertificateSigningRequests with their approval and status subresources, the
SubjectAccessReview the approver asks, and the kubelet's TLS bootstrap end to end with the
csrapproving and csrsigning controllers running in-process."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pinnace.api.authorization.v1 import authorization_pb2
from pinnace.api.certificates.v1 import certificates_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.rbac.v1 import rbac_pb2
from services.apiserver import bootstrap as apiserver_bootstrap
from services.apiserver.auth.bootstrap_files import BootstrapPlan, bootstrap
from services.apiserver.server import APIServer, Config
from services.client import errors, jointoken
from services.client.client import Client
from services.client.config import Credentials, load, render
from services.controllers.base import Settings
from services.controllers.csrapproving import CSRApprovingController
from services.controllers.csrsigning import CSRSigningController
from services.kubelet import tls_bootstrap
from services.machinery import pki
from tests.unit.controllers.fakes import Harness
from tests.unit.security.conftest import Cluster

KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bootstrap(BootstrapPlan(tmp_path, f"127.0.0.1:{port}", nodes=["node-a"]))
    pki_dir = tmp_path / "pki"
    config = Config(
        listen=f"127.0.0.1:{port}",
        token_listen="127.0.0.1:0",
        sqlite_path=str(tmp_path / "state.db"),
        sqlite_synchronous="NORMAL",
        insecure=False,
        tls_cert_file=str(pki_dir / "apiserver.crt"),
        tls_key_file=str(pki_dir / "apiserver.key"),
        client_ca_file=str(pki_dir / "ca.crt"),
        service_account_key_file=str(pki_dir / "sa.key"),
        authorization_modes=["Node", "RBAC"],
        anonymous_auth=True,
        enable_bootstrap_token_auth=True,
    )
    server = APIServer(config)
    await server.start()
    yield Cluster(server, tmp_path)
    await server.stop(grace=0)


@pytest.fixture
async def admin(cluster: Cluster) -> AsyncIterator[Client]:
    client = cluster.client("admin")
    yield client
    await client.close()


@pytest.fixture
async def signers(cluster: Cluster) -> AsyncIterator[Harness]:
    """The approver and the signer, as the controller-manager identity runs them."""
    client = cluster.client("controller-manager")
    pki_dir = cluster.directory / "pki"
    settings = Settings(
        cluster_signing_cert_file=str(pki_dir / "ca.crt"), cluster_signing_key_file=str(pki_dir / "ca.key")
    )
    harness = Harness(client, settings)
    harness.add(CSRApprovingController)
    harness.add(CSRSigningController)
    await harness.start()
    yield harness
    await harness.stop()
    await client.close()


def token_address(cluster: Cluster) -> str:
    return f"127.0.0.1:{cluster.server.token_port}"


def ca_pem(cluster: Cluster) -> bytes:
    return (cluster.directory / "pki" / "ca.crt").read_bytes()


async def new_token(admin: Client, *, ttl: int | None = 3600, **kwargs: object) -> jointoken.BootstrapToken:
    token = jointoken.generate()
    await admin.create(jointoken.token_secret(token, ttl_seconds=ttl, **kwargs))  # type: ignore[arg-type]
    return token


def csr_object(
    node: str = "node-new",
    *,
    organization: str = "system:nodes",
    common_name: str | None = None,
    usages: tuple[str, ...] = ("digital signature", "client auth"),
    signer: str = KUBELET_SIGNER,
    name: str = "",
) -> certificates_pb2.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name or f"system:node:{node}"),
        ]
    )
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    csr = certificates_pb2.CertificateSigningRequest()
    csr.metadata.name = name or f"csr-{node}"
    csr.spec.request = request.public_bytes(serialization.Encoding.PEM)
    csr.spec.signer_name = signer
    csr.spec.usages.extend(usages)
    return csr


# ---------------------------------------------------------------------- discovery


async def test_cluster_info_is_published_and_readable_anonymously(cluster: Cluster) -> None:
    ca = ca_pem(cluster)
    assert await jointoken.fetch_cluster_ca(token_address(cluster), jointoken.ca_hash(ca)) == ca
    info = await jointoken.fetch_cluster_info(token_address(cluster), jointoken.ca_hash(ca))
    assert info.server == f"127.0.0.1:{cluster.server.port}"
    anonymous = Credentials(token_address(cluster), ca).client(timeout=5)
    with pytest.raises(errors.ForbiddenError):
        await anonymous.list("configmaps", "kube-public")
    with pytest.raises(errors.ForbiddenError):
        await anonymous.get("secrets", "bootstrap-token-abcdef", "kube-system")
    await anonymous.close()


async def test_cluster_info_follows_a_moved_apiserver(cluster: Cluster) -> None:
    ca = ca_pem(cluster)
    await apiserver_bootstrap.ensure_cluster_info(cluster.server.registry, ca, "[fd00::1]:7443")
    info = await jointoken.fetch_cluster_info(token_address(cluster), jointoken.ca_hash(ca))
    assert info == jointoken.ClusterInfo(ca, "[fd00::1]:7443")


async def test_fetch_cluster_ca_refuses_a_wrong_hash(cluster: Cluster) -> None:
    other = jointoken.ca_hash(pki.new_ca().cert_pem)
    with pytest.raises(jointoken.JoinError, match="refusing to trust it"):
        await jointoken.fetch_cluster_ca(token_address(cluster), other)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        await jointoken.fetch_cluster_ca(token_address(cluster), "abc")


# ---------------------------------------------------------------------- authentication


async def test_bootstrap_token_authenticates_as_bootstrapper_with_narrow_rights(
    cluster: Cluster, admin: Client
) -> None:
    token = await new_token(admin)
    joiner = cluster.with_token(str(token))
    sent = csr_object()
    sent.spec.username, sent.spec.groups[:] = "admin", ["system:masters"]  # ignored: set by the server
    created = await joiner.create(sent)
    assert created.spec.username == f"system:bootstrap:{token.token_id}"
    assert set(created.spec.groups) == {
        "system:bootstrappers",
        "system:bootstrappers:pinnace:default-node-token",
        "system:authenticated",
    }
    assert not created.status.conditions and not created.status.certificate
    with pytest.raises(errors.ForbiddenError, match=f'User "system:bootstrap:{token.token_id}" cannot list'):
        await joiner.list("pods")
    with pytest.raises(errors.ForbiddenError):
        await joiner.patch(
            "certificatesigningrequests",
            created.metadata.name,
            {"status": {"conditions": [{"type": "Approved", "status": "True"}]}},
            patch_type="merge",
            subresource="approval",
        )
    await joiner.close()


async def test_bad_bootstrap_tokens_are_unauthorized(cluster: Cluster, admin: Client) -> None:
    good = await new_token(admin)
    wrong_secret = jointoken.BootstrapToken(good.token_id, "0" * 16)
    expired = jointoken.generate()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    await admin.create(jointoken.token_secret(expired, ttl_seconds=3600, now=past))
    signing_only = jointoken.generate()
    secret = jointoken.token_secret(signing_only, ttl_seconds=3600)
    del secret.data["usage-bootstrap-authentication"]
    await admin.create(secret)
    unknown = jointoken.generate()
    for token in (wrong_secret, expired, signing_only, unknown):
        client = cluster.with_token(str(token))
        with pytest.raises(errors.UnauthorizedError, match="invalid bootstrap token"):
            await client.create(csr_object())
        await client.close()
    assert not (await admin.list("certificatesigningrequests")).items


async def test_deleting_the_secret_revokes_the_token(cluster: Cluster, admin: Client) -> None:
    token = await new_token(admin)
    joiner = cluster.with_token(str(token))
    await joiner.create(csr_object("node-1"))
    await admin.delete("secrets", token.secret_name, "kube-system")
    with pytest.raises(errors.UnauthorizedError):
        await joiner.create(csr_object("node-2"))
    await joiner.close()


# ---------------------------------------------------------------------- CSR API


async def test_csr_validation_refuses_bad_requests(admin: Client) -> None:
    cases = {
        "spec.request": csr_object(name="bad-pem"),
        "spec.signerName": csr_object(name="bad-signer", signer="no-slash"),
        "spec.usages[0]": csr_object(name="bad-usage", usages=("flying",)),
        "spec.usages": csr_object(name="no-usage", usages=()),
    }
    cases["spec.request"].spec.request = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    for field, csr in cases.items():
        with pytest.raises(errors.InvalidError) as caught:
            await admin.create(csr)
        assert any(c.field == field for c in caught.value.causes), (field, caught.value.message)
    assert not (await admin.list("certificatesigningrequests")).items


async def test_csr_spec_is_immutable_and_subresources_keep_their_lanes(admin: Client) -> None:
    created = await admin.create(csr_object())
    changed = certificates_pb2.CertificateSigningRequest()
    changed.CopyFrom(created)
    changed.spec.signer_name = "example.com/other"
    changed.metadata.labels["team"] = "a"
    updated = await admin.update(changed)
    assert updated.spec.signer_name == KUBELET_SIGNER and updated.metadata.labels["team"] == "a"
    # The status subresource cannot approve, nor set a certificate on an unapproved request.
    sneaky = certificates_pb2.CertificateSigningRequest()
    sneaky.CopyFrom(updated)
    sneaky.status.conditions.add(type="Approved", status="True")
    assert not (await admin.update_status(sneaky)).status.conditions
    sneaky.status.certificate = pki.new_ca().cert_pem
    with pytest.raises(errors.InvalidError, match="only be set on an approved request"):
        await admin.update_status(sneaky)
    approved = await admin.patch(
        "certificatesigningrequests",
        created.metadata.name,
        {"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "ByHand"}]}},
        patch_type="merge",
        subresource="approval",
    )
    assert [(c.type, c.reason) for c in approved.status.conditions] == [("Approved", "ByHand")]
    assert approved.status.conditions[0].HasField("last_update_time")
    with pytest.raises(errors.InvalidError, match='may not remove a condition of type "Approved"'):
        await admin.patch(
            "certificatesigningrequests",
            created.metadata.name,
            {"status": {"conditions": [{"type": "Denied", "status": "True"}]}},
            patch_type="merge",
            subresource="approval",
        )


async def test_subject_access_review_answers_for_the_named_user(admin: Client) -> None:
    def review(user: str, groups: list[str], subresource: str) -> authorization_pb2.SubjectAccessReview:
        sar = authorization_pb2.SubjectAccessReview()
        sar.spec.user = user
        sar.spec.groups.extend(groups)
        attrs = sar.spec.resource_attributes
        attrs.group, attrs.resource, attrs.subresource, attrs.verb = (
            "certificates.k8s.io",
            "certificatesigningrequests",
            subresource,
            "create",
        )
        return sar

    bootstrapper = await admin.create(
        review("system:bootstrap:abcdef", ["system:bootstrappers"], "nodeclient")
    )
    assert bootstrapper.status.allowed
    node = await admin.create(review("system:node:a", ["system:nodes"], "nodeclient"))
    assert not node.status.allowed and "cannot create" in node.status.reason
    renewal = await admin.create(review("system:node:a", ["system:nodes"], "selfnodeclient"))
    assert renewal.status.allowed


# ---------------------------------------------------------------------- TLS bootstrap


async def test_join_with_only_a_join_token(
    cluster: Cluster, admin: Client, signers: Harness, tmp_path: Path
) -> None:
    join = jointoken.format_join_token(ca_pem(cluster), await new_token(admin))
    pinned, token = jointoken.parse_join_token(join)
    info = await jointoken.fetch_cluster_info(token_address(cluster), pinned)
    kubeconfig = await jointoken.request_node_credentials(
        token_address(cluster),
        info.ca_pem,
        token,
        "node-new",
        tmp_path / "kubelet",
        kubeconfig_server=info.server,
        timeout=30,
    )
    credentials = load(kubeconfig)
    cert = x509.load_pem_x509_certificate(credentials.cert_pem)
    pki.verify_signed_by(x509.load_pem_x509_certificate(ca_pem(cluster)), cert)
    assert pki.identity_of(cert) == ("system:node:node-new", ("system:nodes",))
    node_client = credentials.client(timeout=10)
    node = core_pb2.Node()
    node.metadata.name = "node-new"
    await node_client.create(node)
    other = core_pb2.Node()
    other.metadata.name = "node-a"
    await admin.create(other)
    other.metadata.labels["stolen"] = "yes"
    with pytest.raises(errors.ForbiddenError):
        await node_client.update(other)
    await node_client.close()


async def test_approver_leaves_foreign_and_non_bootstrap_requests_pending(
    cluster: Cluster, admin: Client, signers: Harness
) -> None:
    node_a = cluster.client("kubelet-node-a")
    # A node asking for another node's certificate: neither selfnodeclient nor nodeclient.
    await node_a.create(csr_object("node-b", name="foreign"))
    # A user who is no bootstrapper, asking for a node certificate.
    carol = cluster.as_user("carol")
    await admin.create(_bootstrapper_role_for("carol"))
    await carol.create(csr_object("node-c", name="carol"))
    # A node renewing its own: approved and signed. The approver works in order with one
    # worker, so once this one is issued the two before it have been judged.
    await node_a.create(csr_object("node-a", name="renewal"))
    renewed = await _wait_issued(admin, "renewal")
    assert pki.identity_of(x509.load_pem_x509_certificate(renewed))[0] == "system:node:node-a"
    for name in ("foreign", "carol"):
        csr = await admin.get("certificatesigningrequests", name)
        assert not csr.status.conditions and not csr.status.certificate, name
    await node_a.close()
    await carol.close()


def _bootstrapper_role_for(user: str) -> rbac_pb2.ClusterRoleBinding:
    binding = rbac_pb2.ClusterRoleBinding()
    binding.metadata.name = f"{user}-csr"
    binding.role_ref.api_group, binding.role_ref.kind, binding.role_ref.name = (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "system:node-bootstrapper",
    )
    binding.subjects.add(kind="User", name=user, api_group="rbac.authorization.k8s.io")
    return binding


async def _wait_issued(client: Client, name: str) -> bytes:
    async for event in client.watch("certificatesigningrequests", field_selector=f"metadata.name={name}"):
        csr = event.obj
        assert isinstance(csr, certificates_pb2.CertificateSigningRequest)
        if csr.status.certificate:
            return csr.status.certificate
    raise AssertionError("watch ended")


async def test_kubelet_bootstraps_once_then_uses_its_own_kubeconfig(
    cluster: Cluster, admin: Client, signers: Harness, tmp_path: Path
) -> None:
    token = await new_token(admin)
    boot = tmp_path / "bootstrap-kubelet.conf"
    (tmp_path / "ca.crt").write_bytes(ca_pem(cluster))
    boot.write_text(
        render("kubelet-bootstrap", token_address(cluster), str(tmp_path / "ca.crt"), token=str(token))
    )
    kubeconfig = tmp_path / "kubelet.conf"
    first = await tls_bootstrap.ensure_credentials(
        kubeconfig, boot, "node-boot", tmp_path / "pki", timeout=30
    )
    assert first.server == f"127.0.0.1:{cluster.server.port}"
    # The token is gone; the kubelet no longer needs it.
    await admin.delete("secrets", token.secret_name, "kube-system")
    second = await tls_bootstrap.ensure_credentials(
        kubeconfig, boot, "node-boot", tmp_path / "pki", timeout=30
    )
    assert second.cert_pem == first.cert_pem
    async with second.client(timeout=10) as node_client:
        node = core_pb2.Node()
        node.metadata.name = "node-boot"
        await node_client.create(node)
