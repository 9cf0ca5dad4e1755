"""Unit-test doubles: an in-memory ObjectSource and a CRI answering Version/Status."""

from __future__ import annotations

from dataclasses import dataclass, field

from pinnace.api.core.v1 import core_pb2
from pinnace.cri.v1 import api_pb2 as cri


@dataclass
class Objects:
    secrets: dict[tuple[str, str], core_pb2.Secret] = field(default_factory=dict)
    config_maps: dict[tuple[str, str], core_pb2.ConfigMap] = field(default_factory=dict)
    claims: dict[tuple[str, str], core_pb2.PersistentVolumeClaim] = field(default_factory=dict)
    volumes: dict[str, core_pb2.PersistentVolume] = field(default_factory=dict)
    service_list: list[core_pb2.Service] = field(default_factory=list)

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
