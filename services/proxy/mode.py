"""What the sync runner expects of a proxy mode (iptables or userspace)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.proxy.service_port import EndpointsMap, ServicePortName, ServicesMap


@dataclass(frozen=True)
class SyncResult:
    """Rules in place after a sync, per table (the rules-count metric)."""

    rules: dict[str, int]


class Proxier(Protocol):
    mode: str

    async def start(self) -> None:
        """Take over the node: remove the other mode's rules, prepare our chains."""

    async def sync(
        self, services: ServicesMap, endpoints: EndpointsMap, changed: set[ServicePortName] | None
    ) -> SyncResult:
        """Program the node; `changed` None means a full sync of everything."""
        ...

    async def stop(self) -> None:
        """Release sockets; rules stay (a restarted proxy keeps serving with them)."""
