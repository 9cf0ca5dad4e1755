"""What the kubelet reads from the API besides its pods: secrets, configMaps, claims and
volumes by name (direct GETs, done when a container starts or a volume is refreshed),
services (an informer, for the service environment variables), and service-account tokens
(TokenRequest, for projected volumes).

Missing objects come back as None (the pod then waits with a clear reason and recovers when
the object appears); any other failure raises, so a sync never mistakes an unreachable
apiserver for a missing secret."""

from __future__ import annotations

from typing import Protocol

from pinnace.api.authentication.v1 import authentication_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.errors import NotFoundError
from services.client.informer import Informer


class ObjectSource(Protocol):
    async def secret(self, namespace: str, name: str) -> core_pb2.Secret | None: ...
    async def config_map(self, namespace: str, name: str) -> core_pb2.ConfigMap | None: ...
    async def claim(self, namespace: str, name: str) -> core_pb2.PersistentVolumeClaim | None: ...
    async def volume(self, name: str) -> core_pb2.PersistentVolume | None: ...
    def services(self) -> list[core_pb2.Service]: ...
    async def token(
        self, namespace: str, service_account: str, request: authentication_pb2.TokenRequest
    ) -> authentication_pb2.TokenRequest: ...


class APIObjects:
    def __init__(self, client: Client, services: Informer | None = None) -> None:
        self.client = client
        self.services_informer = services

    async def _get(self, resource: str, name: str, namespace: str = "") -> object | None:
        try:
            return await self.client.get(resource, name, namespace)
        except NotFoundError:
            return None

    async def secret(self, namespace: str, name: str) -> core_pb2.Secret | None:
        found = await self._get("secrets", name, namespace)
        return found if isinstance(found, core_pb2.Secret) else None

    async def config_map(self, namespace: str, name: str) -> core_pb2.ConfigMap | None:
        found = await self._get("configmaps", name, namespace)
        return found if isinstance(found, core_pb2.ConfigMap) else None

    async def claim(self, namespace: str, name: str) -> core_pb2.PersistentVolumeClaim | None:
        found = await self._get("persistentvolumeclaims", name, namespace)
        return found if isinstance(found, core_pb2.PersistentVolumeClaim) else None

    async def volume(self, name: str) -> core_pb2.PersistentVolume | None:
        found = await self._get("persistentvolumes", name)
        return found if isinstance(found, core_pb2.PersistentVolume) else None

    def services(self) -> list[core_pb2.Service]:
        if self.services_informer is None:
            return []
        return [s for s in self.services_informer.store.list() if isinstance(s, core_pb2.Service)]

    async def token(
        self, namespace: str, service_account: str, request: authentication_pb2.TokenRequest
    ) -> authentication_pb2.TokenRequest:
        return await self.client.create_token(service_account, namespace, request)
