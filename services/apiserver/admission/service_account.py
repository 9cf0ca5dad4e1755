"""ServiceAccount admission (Kubernetes' plugin of that name): every new pod runs as a
ServiceAccount that exists (`default` unless it names one), takes the account's
imagePullSecrets when it has none, and, unless automountServiceAccountToken is false on the
pod or else on the account, gets the `kube-api-access-<suffix>` projected volume (a bound
token, the cluster CA from the kube-root-ca.crt ConfigMap, and its namespace) mounted
read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container and init
container. That is how a pod's processes find the credentials and the CA to call the API.

Mirror pods (the API's view of a kubelet's static pods) are exempt from the mutation and may
not reference service accounts, secrets or token projections: the kubelet runs them without
the API, so it could not honour any of those.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.admission.chain import AdmissionPlugin, Attributes, Operation

DEFAULT_ACCOUNT = "default"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
# Kubernetes' WarnOnlyBoundTokenExpirationSeconds: one hour and seven seconds.
TOKEN_EXPIRATION_SECONDS = 3607
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# The default account is created by a controller just after its namespace: ask again for a
# moment before refusing a pod (Kubernetes tries 10 times, 100-200 ms apart).
DEFAULT_ACCOUNT_ATTEMPTS = 10

AccountGetter = Callable[[str, str], Awaitable[core_pb2.ServiceAccount | None]]


def token_volume_source() -> core_pb2.ProjectedVolumeSource:
    """Kubernetes' TokenVolumeSource: token, ca.crt and namespace, mode 0644."""
    source = core_pb2.ProjectedVolumeSource(default_mode=0o644)
    source.sources.add().service_account_token.CopyFrom(
        core_pb2.ServiceAccountTokenProjection(path="token", expiration_seconds=TOKEN_EXPIRATION_SECONDS)
    )
    config_map = source.sources.add().config_map
    config_map.name = ROOT_CA_CONFIG_MAP
    config_map.items.add(key=ROOT_CA_KEY, path=ROOT_CA_KEY)
    item = source.sources.add().downward_api.items.add(path="namespace")
    item.field_ref.api_version, item.field_ref.field_path = "v1", "metadata.namespace"
    return source


def should_automount(account: core_pb2.ServiceAccount, pod: core_pb2.Pod) -> bool:
    """The pod's preference wins, then the account's; mounting is the default."""
    if pod.spec.HasField("automount_service_account_token"):
        return pod.spec.automount_service_account_token
    if account.HasField("automount_service_account_token"):
        return account.automount_service_account_token
    return True


def mount_token(pod: core_pb2.Pod, suffix: Callable[[], str]) -> None:
    """Add the token volume (once) and mount it in every container that has nothing at the
    mount path already."""
    existing = next((v.name for v in pod.spec.volumes if v.name.startswith(VOLUME_PREFIX)), "")
    volume_name = existing or VOLUME_PREFIX + suffix()
    needed = False
    for container in (*pod.spec.init_containers, *pod.spec.containers):
        if any(m.mount_path == MOUNT_PATH for m in container.volume_mounts):
            continue
        container.volume_mounts.add(name=volume_name, read_only=True, mount_path=MOUNT_PATH)
        needed = True
    if needed and not existing:
        pod.spec.volumes.add(name=volume_name).projected.CopyFrom(token_volume_source())


def _random_suffix() -> str:
    return "".join(random.choice(_SUFFIX_ALPHABET) for _ in range(5))


def _references_secrets(pod: core_pb2.Pod) -> bool:
    spec = pod.spec
    if spec.image_pull_secrets:
        return True
    for volume in spec.volumes:
        if volume.HasField("secret"):
            return True
        if any(s.HasField("secret") for s in volume.projected.sources):
            return True
    for container in (*spec.init_containers, *spec.containers):
        if any(s.HasField("secret_ref") for s in container.env_from):
            return True
        if any(e.value_from.HasField("secret_key_ref") for e in container.env):
            return True
    return False


class ServiceAccountAdmission(AdmissionPlugin):
    name = "ServiceAccount"

    def __init__(
        self,
        get_account: AccountGetter,
        *,
        default_attempts: int = DEFAULT_ACCOUNT_ATTEMPTS,
        suffix: Callable[[], str] = _random_suffix,
    ) -> None:
        self.get_account = get_account
        self.default_attempts = default_attempts
        self.suffix = suffix

    async def _account(self, namespace: str, name: str) -> core_pb2.ServiceAccount | None:
        attempts = self.default_attempts if name == DEFAULT_ACCOUNT else 1
        for attempt in range(max(1, attempts)):
            if attempt:
                await asyncio.sleep(random.uniform(0.1, 0.2))
            account = await self.get_account(namespace, name)
            if account is not None:
                return account
        return None

    async def admit(self, attrs: Attributes) -> None:
        pod = attrs.obj
        if attrs.operation is not Operation.CREATE or attrs.subresource or not isinstance(pod, core_pb2.Pod):
            return
        if MIRROR_ANNOTATION in pod.metadata.annotations:
            return
        if not pod.spec.service_account_name:
            pod.spec.service_account_name = DEFAULT_ACCOUNT
        # The deprecated alias follows, as Kubernetes' defaulting keeps the two equal.
        pod.spec.service_account = pod.spec.service_account_name
        name = pod.spec.service_account_name
        account = await self._account(attrs.namespace, name)
        if account is None:
            raise errors.forbidden(
                attrs.info,
                attrs.name,
                f"error looking up service account {attrs.namespace}/{name}: "
                f'serviceaccount "{name}" not found',
            )
        if should_automount(account, pod):
            mount_token(pod, self.suffix)
        if not pod.spec.image_pull_secrets:
            for secret in account.image_pull_secrets:
                pod.spec.image_pull_secrets.add(name=secret.name)

    async def validate(self, attrs: Attributes) -> None:
        pod = attrs.obj
        if attrs.operation is not Operation.CREATE or attrs.subresource or not isinstance(pod, core_pb2.Pod):
            return
        if MIRROR_ANNOTATION not in pod.metadata.annotations:
            return
        if pod.spec.service_account_name:
            raise errors.forbidden(attrs.info, attrs.name, "a mirror pod may not reference service accounts")
        if _references_secrets(pod):
            raise errors.forbidden(attrs.info, attrs.name, "a mirror pod may not reference secrets")
        if any(s.HasField("service_account_token") for v in pod.spec.volumes for s in v.projected.sources):
            raise errors.forbidden(
                attrs.info, attrs.name, "a mirror pod may not use ServiceAccountToken volume projections"
            )
