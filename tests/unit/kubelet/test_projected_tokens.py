"""Projected volumes (token, configMap, secret, downwardAPI sources in one atomic directory) and
the token manager's refresh rules, against in-memory doubles."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pinnace.api.authentication.v1 import authentication_pb2
from pinnace.api.core.v1 import core_pb2
from services.kubelet.tokens import TokenManager
from services.kubelet.volumes.errors import VolumeError
from services.kubelet.volumes.manager import VolumeManager
from tests.unit.kubelet.fakes import Objects, pod


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def api_access_pod() -> core_pb2.Pod:
    """What the ServiceAccount admission plugin gives a pod, plus a secret source."""
    p = pod("web", "team")
    p.spec.service_account_name = "builder"
    source = p.spec.volumes.add(name="kube-api-access-x2b4z").projected
    source.default_mode = 0o644
    source.sources.add().service_account_token.CopyFrom(
        core_pb2.ServiceAccountTokenProjection(path="token", expiration_seconds=3607)
    )
    cm = source.sources.add().config_map
    cm.name = "kube-root-ca.crt"
    cm.items.add(key="ca.crt", path="ca.crt")
    item = source.sources.add().downward_api.items.add(path="namespace")
    item.field_ref.field_path = "metadata.namespace"
    secret = source.sources.add().secret
    secret.name = "creds"
    secret.items.add(key="password", path="creds/password", mode=0o400)
    return p


def objects(clock: Clock) -> Objects:
    return Objects(
        config_maps={("team", "kube-root-ca.crt"): core_pb2.ConfigMap(data={"ca.crt": "PEM"})},
        secrets={("team", "creds"): core_pb2.Secret(data={"password": b"hunter2"})},
        clock=clock,
    )


async def test_projected_volume_layout_and_token_request(tmp_path: Path) -> None:
    clock = Clock()
    source = objects(clock)
    tokens = TokenManager(source.token, clock=clock, jitter=lambda: 0.0)
    manager = VolumeManager(tmp_path / "pods", source, tokens=tokens, memory_backed=False)
    p = api_access_pod()
    mounted = await manager.setup(p)
    volume = tmp_path / "pods/uid-1/volumes/kubernetes.io~projected/kube-api-access-x2b4z"
    assert mounted["kube-api-access-x2b4z"].path == volume and mounted["kube-api-access-x2b4z"].read_only
    assert (volume / "token").read_text() == "token-1"
    assert (volume / "ca.crt").read_text() == "PEM"
    assert (volume / "namespace").read_text() == "team"
    assert (volume / "creds/password").read_bytes() == b"hunter2"
    assert stat.S_IMODE((volume / "token").stat().st_mode) == 0o644
    assert stat.S_IMODE((volume / "creds/password").stat().st_mode) == 0o400
    assert (volume / "token").is_symlink() and (volume / "..data").is_symlink()
    [(namespace, account, request)] = source.token_requests
    assert (namespace, account) == ("team", "builder")
    assert request.spec.expiration_seconds == 3607 and not request.spec.audiences
    ref = request.spec.bound_object_ref
    assert (ref.api_version, ref.kind, ref.name, ref.uid) == ("v1", "Pod", "web", "uid-1")
    # Later syncs reuse the token until its refresh point, then rewrite the file.
    await manager.setup(p)
    clock.now += 3607 * 0.5
    await manager.setup(p)
    assert len(source.token_requests) == 1
    clock.now += 3607 * 0.35
    await manager.setup(p)
    assert len(source.token_requests) == 2 and (volume / "token").read_text() == "token-2"
    await manager.teardown("uid-1")
    assert not volume.exists() and len(manager.tokens) == 0


async def test_audience_and_default_lifetime(tmp_path: Path) -> None:
    source = objects(Clock())
    p = pod("vault-client", "team")
    p.spec.volumes.add(name="v").projected.sources.add().service_account_token.CopyFrom(
        core_pb2.ServiceAccountTokenProjection(audience="vault", path="vault-token")
    )
    await VolumeManager(tmp_path / "pods", source, memory_backed=False).setup(p)
    [(_, account, request)] = source.token_requests
    assert account == "default" and list(request.spec.audiences) == ["vault"]
    assert request.spec.expiration_seconds == 3600


async def test_missing_sources_fail_the_mount_and_optional_ones_do_not(tmp_path: Path) -> None:
    source = objects(Clock())
    del source.config_maps[("team", "kube-root-ca.crt")]
    manager = VolumeManager(tmp_path / "pods", source, memory_backed=False)
    with pytest.raises(
        VolumeError, match=r'volume "kube-api-access-x2b4z": configmap "kube-root-ca\.crt" not found'
    ):
        await manager.setup(api_access_pod())
    p = api_access_pod()
    p.spec.volumes[0].projected.sources[1].config_map.optional = True
    await manager.setup(p)
    volume = tmp_path / "pods/uid-1/volumes/kubernetes.io~projected/kube-api-access-x2b4z"
    assert not (volume / "ca.crt").exists() and (volume / "token").exists()
    source.token_error = RuntimeError('serviceaccounts "builder" not found')
    with pytest.raises(VolumeError, match="failed to fetch token:"):
        await VolumeManager(tmp_path / "other", source, memory_backed=False).setup(p)


def answer(issued: float, lifetime: int, token: str = "t") -> authentication_pb2.TokenRequest:
    reply = authentication_pb2.TokenRequest()
    reply.spec.expiration_seconds = lifetime
    reply.status.token = token
    reply.status.expiration_timestamp.FromSeconds(int(issued) + lifetime)
    return reply


def test_refresh_points() -> None:
    clock = Clock()

    async def never(*_: object) -> authentication_pb2.TokenRequest:
        raise AssertionError("not called")

    manager = TokenManager(never, clock=clock, jitter=lambda: 0.0)
    hour = answer(clock.now, 3600)
    clock.now += 0.79 * 3600
    assert not manager.needs_refresh(hour)
    clock.now += 0.02 * 3600
    assert manager.needs_refresh(hour)
    # A long-lived token is refreshed after 24 hours, not at 80% of its year.
    clock.now = 1_000_000.0
    year = answer(clock.now, 365 * 24 * 3600)
    clock.now += 23.9 * 3600
    assert not manager.needs_refresh(year)
    clock.now += 0.2 * 3600
    assert manager.needs_refresh(year)


async def test_outage_keeps_a_valid_token_and_not_an_expired_one() -> None:
    clock = Clock()
    calls: list[str] = []

    async def flaky(namespace: str, account: str, request: authentication_pb2.TokenRequest):
        calls.append(account)
        if len(calls) > 1:
            raise ConnectionError("apiserver unreachable")
        return answer(clock.now, 3600, "first")

    manager = TokenManager(flaky, clock=clock, jitter=lambda: 0.0)
    request = authentication_pb2.TokenRequest()
    request.spec.expiration_seconds = 3600
    assert (await manager.token("ns", "sa", request)).status.token == "first"
    clock.now += 0.9 * 3600
    assert (await manager.token("ns", "sa", request)).status.token == "first"
    clock.now += 0.2 * 3600
    with pytest.raises(ConnectionError):
        await manager.token("ns", "sa", request)
    assert len(calls) == 3
