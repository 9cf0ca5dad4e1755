"""Unit-test doubles: an in-memory ObjectSource and a CRI answering Version/Status."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pinnace.api.authentication.v1 import authentication_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri


@dataclass
class Objects:
    secrets: dict[tuple[str, str], core_pb2.Secret] = field(default_factory=dict)
    config_maps: dict[tuple[str, str], core_pb2.ConfigMap] = field(default_factory=dict)
    claims: dict[tuple[str, str], core_pb2.PersistentVolumeClaim] = field(default_factory=dict)
    volumes: dict[str, core_pb2.PersistentVolume] = field(default_factory=dict)
    service_list: list[core_pb2.Service] = field(default_factory=list)
    # TokenRequests answered, in order: (namespace, account, request); tokens are "token-<n>".
    token_requests: list[tuple[str, str, authentication_pb2.TokenRequest]] = field(default_factory=list)
    token_error: Exception | None = None
    clock: Callable[[], float] = time.time

    async def secret(self, namespace, name):
        return self.secrets.get((namespace, name))

    async def config_map(self, namespace, name):
        return self.config_maps.get((namespace, name))

    async def claim(self, namespace, name):
        return self.claims.get((namespace, name))

    async def volume(self, name):
        return self.volumes.get(name)

    def services(self):
        return self.service_list

    async def token(self, namespace, service_account, request):
        if self.token_error is not None:
            raise self.token_error
        self.token_requests.append((namespace, service_account, request))
        answer = authentication_pb2.TokenRequest()
        answer.CopyFrom(request)
        answer.status.token = f"token-{len(self.token_requests)}"
        answer.status.expiration_timestamp.FromSeconds(int(self.clock()) + request.spec.expiration_seconds)
        return answer


class FakeCRI:
    def __init__(self, network_ready: bool = True) -> None:
        self.network_ready = network_ready

    async def version(self):
        return cri.VersionResponse(runtime_name="docker", runtime_version="20.10.24")

    async def status(self):
        return cri.StatusResponse(
            status=cri.RuntimeStatus(
                conditions=[
                    cri.RuntimeCondition(type="RuntimeReady", status=True),
                    cri.RuntimeCondition(
                        type="NetworkReady",
                        status=self.network_ready,
                        reason="" if self.network_ready else "NetworkPluginNotReady",
                        message="" if self.network_ready else "no CNI configuration",
                    ),
                ]
            )
        )


def pod(name: str = "p", namespace: str = "ns", *containers: core_pb2.Container) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, namespace, "uid-1"
    p.spec.containers.extend(containers or [core_pb2.Container(name="c", image="pinnace/busybox:1.0")])
    p.spec.restart_policy = "Always"
    return p
