"""LimitRanger: apply a namespace's LimitRange to pods at admission, as Kubernetes does:
containers without limits or requests get the Container item's `default` and
`defaultRequest`, then every container (and the pod as a whole, for Pod items) must stay
within min, max and maxLimitRequestRatio; anything outside is refused with Kubernetes'
message. Defaults change the pod's QoS class, so it is recomputed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors, strategies
from services.apiserver.admission.chain import AdmissionPlugin, Attributes, Operation
from services.machinery.kinds import REGISTRY
from services.machinery.quantity import Quantity, parse_quantity

if TYPE_CHECKING:
    from services.apiserver.registry import Registry


def _q(text: str) -> Quantity:
    return parse_quantity(text)


def container_problems(item: core_pb2.LimitRangeItem, container: core_pb2.Container) -> list[str]:
    problems = []
    requests, limits = container.resources.requests, container.resources.limits
    for resource, low in item.min.items():
        if resource in requests and _q(requests[resource]) < _q(low):
            problems.append(
                f"minimum {resource} usage per Container is {low}, but request is {requests[resource]}"
            )
        elif resource not in requests and resource not in limits:
            problems.append(f"minimum {resource} usage per Container is {low}.  No request is specified")
    for resource, high in item.max.items():
        if resource in limits and _q(limits[resource]) > _q(high):
            problems.append(
                f"maximum {resource} usage per Container is {high}, but limit is {limits[resource]}"
            )
        elif resource not in limits:
            problems.append(f"maximum {resource} usage per Container is {high}.  No limit is specified")
    for resource, ratio in item.max_limit_request_ratio.items():
        if resource in limits and resource in requests and _q(requests[resource]).value > 0:
            actual = _q(limits[resource]).value / _q(requests[resource]).value
            if actual > _q(ratio).value:
                problems.append(
                    f"{resource} max limit to request ratio per Container is {ratio}, but provided ratio is "
                    f"{float(actual):.6f}"
                )
    return problems


def pod_problems(item: core_pb2.LimitRangeItem, pod: core_pb2.Pod) -> list[str]:
    problems = []
    for resource, high in item.max.items():
        total = sum((_q(c.resources.limits.get(resource, "0")) for c in pod.spec.containers), _q("0"))
        if total > _q(high):
            problems.append(f"maximum {resource} usage per Pod is {high}, but limit is {total}")
    for resource, low in item.min.items():
        total = sum((_q(c.resources.requests.get(resource, "0")) for c in pod.spec.containers), _q("0"))
        if total < _q(low):
            problems.append(f"minimum {resource} usage per Pod is {low}, but request is {total}")
    return problems


def apply_defaults(item: core_pb2.LimitRangeItem, container: core_pb2.Container) -> None:
    """Missing limits take `default`, missing requests `defaultRequest`; a request still
    missing equals its limit (Kubernetes' pod defaulting)."""
    resources = container.resources
    for resource, value in item.default.items():
        resources.limits.setdefault(resource, value)
    for resource, value in item.default_request.items():
        resources.requests.setdefault(resource, value)
    for resource, value in resources.limits.items():
        resources.requests.setdefault(resource, value)


class LimitRanger(AdmissionPlugin):
    name = "LimitRanger"

    def __init__(self, registry: Callable[[], Registry]) -> None:
        self.registry = registry

    async def _items(self, namespace: str) -> list[core_pb2.LimitRangeItem]:
        page = await self.registry().list(REGISTRY.by_name("limitranges"), namespace)
        items: list[core_pb2.LimitRangeItem] = []
        for lr in page.items:
            assert isinstance(lr, core_pb2.LimitRange)
            items.extend(lr.spec.limits)
        return items

    async def admit(self, attrs: Attributes) -> None:
        pod = attrs.obj
        if attrs.operation is not Operation.CREATE or attrs.subresource or not isinstance(pod, core_pb2.Pod):
            return
        items = await self._items(attrs.namespace)
        if not items:
            return
        for item in items:
            if item.type == "Container":
                for container in [*pod.spec.containers, *pod.spec.init_containers]:
                    apply_defaults(item, container)
        problems: list[str] = []
        for item in items:
            if item.type == "Container":
                for container in pod.spec.containers:
                    problems.extend(container_problems(item, container))
            elif item.type == "Pod":
                problems.extend(pod_problems(item, pod))
        if problems:
            raise errors.forbidden(attrs.info, attrs.name, "[" + ", ".join(problems) + "]")
        pod.status.qos_class = strategies.qos_class(pod.spec)
