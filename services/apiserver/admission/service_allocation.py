"""Service address allocation: a ClusterIP from the service CIDR (an explicit one honoured when
free and in range, "None" for headless), NodePorts from the node-port range, and a
healthCheckNodePort from the same range for LoadBalancer services with externalTrafficPolicy
Local (kube-proxy serves their health checks on it)."""

from __future__ import annotations

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.admission.chain import AdmissionPlugin, Attributes, Operation
from services.apiserver.allocators import (
    AllocatedError,
    ClusterIPAllocator,
    NodePortAllocator,
    OutOfRangeError,
    RangeFullError,
)
from services.machinery.errors import invalid


class ServiceAllocation(AdmissionPlugin):
    name = "ServiceAllocation"

    def __init__(self, cluster_ips: ClusterIPAllocator, node_ports: NodePortAllocator) -> None:
        self.cluster_ips = cluster_ips
        self.node_ports = node_ports

    async def admit(self, attrs: Attributes) -> None:
        if not isinstance(attrs.obj, core_pb2.Service) or attrs.subresource or attrs.dry_run:
            return
        svc, old = attrs.obj, attrs.old
        assert old is None or isinstance(old, core_pb2.Service)
        if attrs.operation is Operation.CREATE:
            await self._allocate_cluster_ip(attrs, svc)
        elif attrs.operation is Operation.UPDATE and old is not None:
            svc.spec.cluster_ip = svc.spec.cluster_ip or old.spec.cluster_ip
            del svc.spec.cluster_ips[:]
            svc.spec.cluster_ips.extend(old.spec.cluster_ips)
        if attrs.operation in (Operation.CREATE, Operation.UPDATE):
            await self._allocate_node_ports(attrs, svc, old)
            await self._allocate_health_check_port(attrs, svc, old)

    async def _allocate_cluster_ip(self, attrs: Attributes, svc: core_pb2.Service) -> None:
        spec = svc.spec
        if spec.type == "ExternalName" or spec.cluster_ip == "None":
            return
        try:
            ip = await self.cluster_ips.allocate(spec.cluster_ip)
        except OutOfRangeError:
            raise errors.invalid(
                attrs.info,
                attrs.name,
                [
                    invalid(
                        "spec.clusterIP",
                        spec.cluster_ip,
                        "provided IP is not in the valid range. The range of valid IPs is "
                        f"{self.cluster_ips.network}",
                    )
                ],
            ) from None
        except AllocatedError:
            raise errors.invalid(
                attrs.info,
                attrs.name,
                [invalid("spec.clusterIP", spec.cluster_ip, "provided IP is already allocated")],
            ) from None
        except RangeFullError:
            raise errors.APIError("InternalError", "failed to allocate a serviceIP: range is full") from None
        attrs.taken["cluster_ip"] = ip
        spec.cluster_ip = ip
        del spec.cluster_ips[:]
        spec.cluster_ips.append(ip)

    async def _allocate_node_ports(
        self, attrs: Attributes, svc: core_pb2.Service, old: core_pb2.Service | None
    ) -> None:
        wants = svc.spec.type in ("NodePort", "LoadBalancer")
        held = {p.node_port for p in old.spec.ports if p.node_port} if old is not None else set()
        taken: list[int] = attrs.taken.setdefault("node_ports", [])
        if not wants:
            for port in svc.spec.ports:
                port.node_port = 0
            attrs.taken["release_after"] = sorted(held)
            return
        for i, port in enumerate(svc.spec.ports):
            if port.node_port in held:
                continue
            if port.node_port == 0 and old is not None:
                reuse = next(
                    (
                        p.node_port
                        for p in old.spec.ports
                        if p.node_port and p.port == port.port and p.protocol == port.protocol
                    ),
                    0,
                )
                if reuse:
                    port.node_port = reuse
                    continue
            try:
                port.node_port = await self.node_ports.allocate(port.node_port)
            except AllocatedError:
                raise errors.invalid(
                    attrs.info,
                    attrs.name,
                    [
                        invalid(
                            f"spec.ports[{i}].nodePort", port.node_port, "provided port is already allocated"
                        )
                    ],
                ) from None
            except OutOfRangeError:
                raise errors.invalid(
                    attrs.info,
                    attrs.name,
                    [
                        invalid(
                            f"spec.ports[{i}].nodePort",
                            port.node_port,
                            f"provided port is not in the valid range. The range of valid ports is "
                            f"{self.node_ports.low}-{self.node_ports.high}",
                        )
                    ],
                ) from None
            except RangeFullError:
                raise errors.APIError(
                    "InternalError", "failed to allocate a nodePort: range is full"
                ) from None
            taken.append(port.node_port)
        kept = {p.node_port for p in svc.spec.ports}
        attrs.taken["release_after"] = sorted(held - kept)

    async def _allocate_health_check_port(
        self, attrs: Attributes, svc: core_pb2.Service, old: core_pb2.Service | None
    ) -> None:
        spec = svc.spec
        wants = spec.type == "LoadBalancer" and spec.external_traffic_policy == "Local"
        held = old.spec.health_check_node_port if old is not None else 0
        if not wants:
            spec.health_check_node_port = 0
            if held:
                attrs.taken["release_after"] = sorted({*attrs.taken.get("release_after", []), held})
            return
        if held:
            if spec.health_check_node_port not in (0, held):
                raise errors.invalid(
                    attrs.info,
                    attrs.name,
                    [invalid("spec.healthCheckNodePort", spec.health_check_node_port, "field is immutable")],
                )
            spec.health_check_node_port = held
            return
        try:
            spec.health_check_node_port = await self.node_ports.allocate(spec.health_check_node_port)
        except AllocatedError:
            raise errors.invalid(
                attrs.info,
                attrs.name,
                [
                    invalid(
                        "spec.healthCheckNodePort",
                        spec.health_check_node_port,
                        "provided port is already allocated",
                    )
                ],
            ) from None
        except OutOfRangeError:
            raise errors.invalid(
                attrs.info,
                attrs.name,
                [
                    invalid(
                        "spec.healthCheckNodePort",
                        spec.health_check_node_port,
                        f"provided port is not in the valid range. The range of valid ports is "
                        f"{self.node_ports.low}-{self.node_ports.high}",
                    )
                ],
            ) from None
        except RangeFullError:
            raise errors.APIError(
                "InternalError", "failed to allocate a healthCheckNodePort: range is full"
            ) from None
        attrs.taken.setdefault("node_ports", []).append(spec.health_check_node_port)

    async def rollback(self, attrs: Attributes) -> None:
        if "cluster_ip" in attrs.taken:
            await self.cluster_ips.release(attrs.taken.pop("cluster_ip"))
        for port in attrs.taken.pop("node_ports", []):
            await self.node_ports.release(port)
        attrs.taken.pop("release_after", None)

    async def committed(self, attrs: Attributes) -> None:
        """After a successful update: give back the node ports the service no longer uses."""
        for port in attrs.taken.pop("release_after", []):
            await self.node_ports.release(port)

    async def committed_delete(self, attrs: Attributes, last: Message) -> None:
        if not isinstance(last, core_pb2.Service):
            return
        if last.spec.cluster_ip and last.spec.cluster_ip != "None":
            await self.cluster_ips.release(last.spec.cluster_ip)
        for port in last.spec.ports:
            if port.node_port:
                await self.node_ports.release(port.node_port)
        if last.spec.health_check_node_port:
            await self.node_ports.release(last.spec.health_check_node_port)
