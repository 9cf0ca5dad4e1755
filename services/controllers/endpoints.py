"""Endpoints: for every Service with a selector, the addresses of its pods (ready ones in
`addresses`, the rest in `notReadyAddresses`), one subset per distinct set of resolved ports.

A pod change recomputes only the services that select the pod before or after the change:
services are indexed by each `key=value` pair of their selector, so finding them costs the
pod's labels, not the number of services (DESIGN.md principle 5). A sync reads only the pods
indexed under the selector's rarest pair."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.client.errors import AlreadyExistsError, NotFoundError
from services.controllers.base import Controller, ControllerContext, split_key
from services.controllers.podutil import is_ready, is_terminal

SELECTOR_INDEX = "selector-pair"
LABEL_INDEX = "label-pair"


def _service_pairs(svc: Message) -> list[str]:
    assert isinstance(svc, core_pb2.Service)
    ns = svc.metadata.namespace
    return [f"{ns}/{k}={v}" for k, v in svc.spec.selector.items()]


def pod_label_pairs(pod: Message) -> list[str]:
    ns = pod.metadata.namespace  # type: ignore[attr-defined]
    return [f"{ns}/{k}={v}" for k, v in pod.metadata.labels.items()]  # type: ignore[attr-defined]


def _relevant(pod: core_pb2.Pod) -> tuple[object, ...]:
    """What of a pod the Endpoints depend on; other changes recompute nothing."""
    ports = tuple((p.name, p.container_port, p.protocol) for c in pod.spec.containers for p in c.ports)
    return (
        tuple(sorted(pod.metadata.labels.items())),
        pod.status.pod_ip,
        is_ready(pod),
        is_terminal(pod),
        pod.metadata.HasField("deletion_timestamp"),
        pod.spec.node_name,
        pod.spec.hostname,
        pod.spec.subdomain,
        ports,
    )


def resolve_port(pod: core_pb2.Pod, port: core_pb2.ServicePort) -> int | None:
    """A service port's targetPort on one pod: a number, or a named container port."""
    target = port.target_port
    kind = target.WhichOneof("value")
    if kind == "int_val":
        return target.int_val
    if kind == "str_val":
        for container in pod.spec.containers:
            for cport in container.ports:
                if cport.name == target.str_val and (cport.protocol or "TCP") == (port.protocol or "TCP"):
                    return cport.container_port
        return None
    return port.port


def build_subsets(svc: core_pb2.Service, pods: Iterable[core_pb2.Pod]) -> list[core_pb2.EndpointSubset]:
    groups: dict[tuple[tuple[str, int, str], ...], tuple[list[core_pb2.EndpointAddress], ...]] = {}
    publish = svc.spec.publish_not_ready_addresses
    for pod in pods:
        if not pod.status.pod_ip or is_terminal(pod):
            continue
        if pod.metadata.HasField("deletion_timestamp") and not publish:
            continue
        ports: list[tuple[str, int, str]] = []
        for sport in svc.spec.ports:
            number = resolve_port(pod, sport)
            if number is not None:
                ports.append((sport.name, number, sport.protocol or "TCP"))
        if svc.spec.ports and not ports:
            continue
        address = core_pb2.EndpointAddress(ip=pod.status.pod_ip)
        if pod.spec.node_name:
            address.node_name = pod.spec.node_name
        if pod.spec.hostname and pod.spec.subdomain == svc.metadata.name:
            address.hostname = pod.spec.hostname
        address.target_ref.kind = "Pod"
        address.target_ref.namespace = pod.metadata.namespace
        address.target_ref.name = pod.metadata.name
        address.target_ref.uid = pod.metadata.uid
        ready, not_ready = groups.setdefault(tuple(sorted(ports)), ([], []))
        (ready if publish or is_ready(pod) else not_ready).append(address)
    subsets = []
    for ports_key, (ready, not_ready) in sorted(groups.items()):
        subset = core_pb2.EndpointSubset()
        subset.addresses.extend(sorted(ready, key=lambda a: (a.ip, a.target_ref.name)))
        subset.not_ready_addresses.extend(sorted(not_ready, key=lambda a: (a.ip, a.target_ref.name)))
        for name, number, protocol in ports_key:
            subset.ports.add(name=name, port=number, protocol=protocol)
        subsets.append(subset)
    return subsets


class EndpointsController(Controller):
    name = "endpoint"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.services = self.informer("services", {SELECTOR_INDEX: _service_pairs})
        self.pods = self.informer("pods", {LABEL_INDEX: pod_label_pairs})
        self.endpoints = self.informer("endpoints")
        self.services.add_handlers(
            on_add=self.enqueue_obj,
            on_update=lambda _old, new: self.enqueue_obj(new),
            on_delete=self.enqueue_obj,
        )
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_added)
        self.endpoints.add_handlers(on_delete=self._endpoints_deleted)
        # Our own last write per key: until the watch delivers it, the cache holds an older
        # resourceVersion and an update from it would only conflict.
        self.written: dict[str, core_pb2.Endpoints] = {}

    def services_for(self, pod: Message) -> set[str]:
        keys: set[str] = set()
        labels = pod.metadata.labels  # type: ignore[attr-defined]
        for pair in pod_label_pairs(pod):
            for svc in self.services.store.by_index(SELECTOR_INDEX, pair):
                assert isinstance(svc, core_pb2.Service)
                if all(labels.get(k) == v for k, v in svc.spec.selector.items()):
                    keys.add(f"{svc.metadata.namespace}/{svc.metadata.name}")
        return keys

    def _pod_added(self, pod: Message) -> None:
        for key in self.services_for(pod):
            self.enqueue(key)

    def _pod_updated(self, old: Message, new: Message) -> None:
        assert isinstance(old, core_pb2.Pod) and isinstance(new, core_pb2.Pod)
        if old is not new and _relevant(old) == _relevant(new):
            return
        for key in self.services_for(old) | self.services_for(new):
            self.enqueue(key)

    def _endpoints_deleted(self, ep: Message) -> None:
        # Someone deleted Endpoints we manage: recreate them.
        key = f"{ep.metadata.namespace}/{ep.metadata.name}"  # type: ignore[attr-defined]
        self.written.pop(key, None)
        if self.services.store.get(key) is not None:
            self.enqueue(key)

    def _selected_pods(self, svc: core_pb2.Service) -> list[core_pb2.Pod]:
        pairs = _service_pairs(svc)
        candidates = min((self.pods.store.indexes[LABEL_INDEX].get(p, set()) for p in pairs), key=len)
        pods = []
        for key in candidates:
            pod = self.pods.store.get(key)
            if isinstance(pod, core_pb2.Pod) and all(
                pod.metadata.labels.get(k) == v for k, v in svc.spec.selector.items()
            ):
                pods.append(pod)
        return pods

    def _current(self, key: str) -> Message | None:
        cached = self.endpoints.store.get(key)
        mine = self.written.get(key)
        if mine is None:
            return cached
        seen = int(cached.metadata.resource_version or 0) if cached is not None else -1  # type: ignore[attr-defined]
        if seen >= int(mine.metadata.resource_version or 0):
            del self.written[key]
            return cached
        return mine

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        svc = self.services.store.get(key)
        if svc is None:
            self.written.pop(key, None)
            with contextlib.suppress(NotFoundError):
                await self.client.delete("endpoints", name, namespace)
            return
        assert isinstance(svc, core_pb2.Service)
        if not svc.spec.selector:
            return  # endpoints of selector-less services are the user's
        subsets = build_subsets(svc, self._selected_pods(svc))
        current = self._current(key)
        if isinstance(current, core_pb2.Endpoints):
            if list(current.subsets) == subsets and dict(current.metadata.labels) == dict(
                svc.metadata.labels
            ):
                return
            updated = core_pb2.Endpoints()
            updated.CopyFrom(current)
            del updated.subsets[:]
            updated.subsets.extend(subsets)
            updated.metadata.labels.clear()
            updated.metadata.labels.update(svc.metadata.labels)
            self.written[key] = await self.client.update(updated)
            return
        endpoints = core_pb2.Endpoints(subsets=subsets)
        endpoints.metadata.name, endpoints.metadata.namespace = name, namespace
        endpoints.metadata.labels.update(svc.metadata.labels)
        try:
            self.written[key] = await self.client.create(endpoints)
        except AlreadyExistsError:
            # Our cache is behind: fetch and update on the retry.
            fresh = await self.client.get("endpoints", name, namespace)
            assert isinstance(fresh, core_pb2.Endpoints)
            fresh.ClearField("subsets")
            fresh.subsets.extend(subsets)
            fresh.metadata.labels.clear()
            fresh.metadata.labels.update(svc.metadata.labels)
            self.written[key] = await self.client.update(fresh)
