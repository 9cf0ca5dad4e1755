"""The ServiceAccount admission plugin on a real in-process apiserver: the default account, the
kube-api-access projected volume and its mounts, the opt-outs, mirror pods, and refusals that
create nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pinnace.api.core.v1 import core_pb2
from services.apiserver.admission.chain import Attributes, Operation
from services.apiserver.admission.service_account import (
    MOUNT_PATH,
    ServiceAccountAdmission,
    token_volume_source,
)
from services.apiserver.errors import APIError
from services.apiserver.server import DEFAULT_ADMISSION_PLUGINS, APIServer
from services.client import errors
from services.client.client import Client
from services.machinery.kinds import REGISTRY
from tests.unit.apiserver.conftest import config_for
from tests.unit.apiserver.helpers import manifest, pod


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Client]:
    config = config_for(tmp_path)
    config.admission_plugins = list(DEFAULT_ADMISSION_PLUGINS)
    server = APIServer(config)
    await server.start()
    client = Client.connect(f"127.0.0.1:{server.port}", timeout=10)
    await client.create(manifest("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default}\n"))
    yield client
    await client.close()
    await server.stop(grace=0)


def token_volume(created: core_pb2.Pod) -> core_pb2.Volume:
    [volume] = [v for v in created.spec.volumes if v.name.startswith("kube-api-access-")]
    return volume


async def test_default_account_and_token_volume(api: Client) -> None:
    body = pod("web")
    body.spec.init_containers.add(name="init", image="pinnace/busybox:1.0")
    created = await api.create(body)
    assert created.spec.service_account_name == "default"
    assert created.spec.service_account == "default"
    volume = token_volume(created)
    assert len(volume.name) == len("kube-api-access-") + 5
    assert volume.projected == token_volume_source()
    sources = volume.projected.sources
    assert sources[0].service_account_token.expiration_seconds == 3607
    assert sources[0].service_account_token.path == "token"
    assert (sources[1].config_map.name, sources[1].config_map.items[0].key) == ("kube-root-ca.crt", "ca.crt")
    assert sources[2].downward_api.items[0].field_ref.field_path == "metadata.namespace"
    assert volume.projected.default_mode == 0o644
    for container in (*created.spec.init_containers, *created.spec.containers):
        [mount] = container.volume_mounts
        assert (mount.name, mount.mount_path, mount.read_only) == (volume.name, MOUNT_PATH, True)


async def test_missing_account_is_refused_and_nothing_is_created(api: Client) -> None:
    body = pod("lost")
    body.spec.service_account_name = "ghost"
    with pytest.raises(
        errors.ForbiddenError,
        match='pods "lost" is forbidden: error looking up service account default/ghost: '
        'serviceaccount "ghost" not found',
    ):
        await api.create(body)
    assert not (await api.list("pods", "default")).items


async def test_opting_out_on_the_pod_or_the_account(api: Client) -> None:
    await api.create(
        manifest("""
apiVersion: v1
kind: ServiceAccount
metadata: {name: quiet}
automountServiceAccountToken: false
imagePullSecrets: [{name: registry}]
""")
    )
    no_mount = pod("no-mount")
    no_mount.spec.automount_service_account_token = False
    created = await api.create(no_mount)
    assert not created.spec.volumes and not created.spec.containers[0].volume_mounts
    quiet = pod("quiet-pod")
    quiet.spec.service_account_name = "quiet"
    created = await api.create(quiet)
    assert not created.spec.volumes
    assert [s.name for s in created.spec.image_pull_secrets] == ["registry"]
    # The pod's own choice wins over the account's.
    insists = pod("insists")
    insists.spec.service_account_name = "quiet"
    insists.spec.automount_service_account_token = True
    created = await api.create(insists)
    assert token_volume(created).projected.sources


async def test_a_container_with_its_own_mount_there_keeps_it(api: Client) -> None:
    body = manifest(f"""
apiVersion: v1
kind: Pod
metadata: {{name: own}}
spec:
  volumes: [{{name: mine, emptyDir: {{}}}}]
  containers:
  - {{name: a, image: pinnace/busybox:1.0, volumeMounts: [{{name: mine, mountPath: {MOUNT_PATH}}}]}}
  - {{name: b, image: pinnace/busybox:1.0}}
""")
    created = await api.create(body)
    volume = token_volume(created)
    assert [m.name for m in created.spec.containers[0].volume_mounts] == ["mine"]
    assert [m.name for m in created.spec.containers[1].volume_mounts] == [volume.name]


async def test_mirror_pods_are_exempt_but_may_not_use_accounts(api: Client) -> None:
    mirror = pod("static-node1", node="node1")
    mirror.metadata.annotations["kubernetes.io/config.mirror"] = "hash"
    created = await api.create(mirror)
    assert not created.spec.service_account_name and not created.spec.volumes
    with_account = pod("static2-node1", node="node1")
    with_account.metadata.annotations["kubernetes.io/config.mirror"] = "hash"
    with_account.spec.service_account_name = "default"
    with pytest.raises(errors.ForbiddenError, match="a mirror pod may not reference service accounts"):
        await api.create(with_account)
    with_secret = pod("static3-node1", node="node1")
    with_secret.metadata.annotations["kubernetes.io/config.mirror"] = "hash"
    with_secret.spec.volumes.add(name="s").secret.secret_name = "creds"
    with pytest.raises(errors.ForbiddenError, match="a mirror pod may not reference secrets"):
        await api.create(with_secret)
    names = [p.metadata.name for p in (await api.list("pods", "default")).items]
    assert names == ["static-node1"]


async def test_the_default_account_is_awaited_then_refused() -> None:
    calls: list[tuple[str, str]] = []

    async def never(namespace: str, name: str) -> core_pb2.ServiceAccount | None:
        calls.append((namespace, name))
        return None

    plugin = ServiceAccountAdmission(never, default_attempts=3)
    attrs = Attributes(Operation.CREATE, REGISTRY.by_name("pods"), "team", "p", pod("p", namespace="team"))
    with pytest.raises(APIError, match="error looking up service account team/default"):
        await plugin.admit(attrs)
    assert calls == [("team", "default")] * 3


async def test_projected_volume_validation(api: Client) -> None:
    body = manifest("""
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  automountServiceAccountToken: false
  volumes:
  - name: v
    projected:
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 60}
      - serviceAccountToken: {path: /abs}
      - {configMap: {name: c, items: [{key: k, path: token}]}, secret: {name: s}}
  containers: [{name: c, image: pinnace/busybox:1.0}]
""")
    with pytest.raises(errors.InvalidError) as caught:
        await api.create(body)
    message = str(caught.value)
    assert (
        "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: 60"
        in message
    )
    assert 'sources[1].serviceAccountToken.path: Invalid value: "/abs": must be a relative path' in message
    assert "sources[2]: Forbidden: may not specify more than 1 volume type" in message
    assert "conflicting duplicate paths" in message
    assert not (await api.list("pods", "default")).items
