"""`scale`: set the replicas of a scalable workload through its scale subresource, after
checking kubectl's preconditions (--current-replicas, --resource-version)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from services.cli.errors import CLIError
from services.client.client import Client
from services.client.errors import NotFoundError
from services.machinery.kinds import KindInfo


@dataclass(frozen=True)
class Preconditions:
    """-1 and "" mean "not checked", as kubectl's ScalePrecondition."""

    current_replicas: int = -1
    resource_version: str = ""


class PreconditionError(CLIError):
    """kubectl's `Expected replicas to be 3, was 2`."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"Expected {what} to be {expected}, was {actual}")


def ensure_scalable(info: KindInfo) -> None:
    if "scale" not in info.subresources:
        # What the apiserver answers when the kind has no scale subresource.
        raise NotFoundError("the server could not find the requested resource", grpc.StatusCode.NOT_FOUND)


async def scale(
    client: Client,
    info: KindInfo,
    name: str,
    namespace: str,
    replicas: int,
    preconditions: Preconditions = Preconditions(),
) -> None:
    """Read the scale, check the preconditions against it, then write the new replicas
    conditioned on the resourceVersion just read, so nothing slips in between."""
    ensure_scalable(info)
    current = await client.get_scale(info, name, namespace)
    if preconditions.current_replicas >= 0 and current.spec.replicas != preconditions.current_replicas:
        raise PreconditionError("replicas", str(preconditions.current_replicas), str(current.spec.replicas))
    if preconditions.resource_version and current.metadata.resource_version != preconditions.resource_version:
        raise PreconditionError(
            "resource version", preconditions.resource_version, current.metadata.resource_version
        )
    guard = current.metadata.resource_version if preconditions != Preconditions() else ""
    await client.scale(info, name, replicas, namespace, resource_version=guard)
