"""Builders for pods and nodes as the API would hold them (no apiserver needed)."""

from __future__ import annotations

import itertools
from typing import Any

from pinnace.api.core.v1 import core_pb2
from services.scheduler.cache import Cache
from services.scheduler.config import SchedulerConfig
from services.scheduler.framework import Framework
from services.scheduler.podinfo import PodInfo, pod_info

_uids = itertools.count(1)


def make_pod(
    name: str = "p",
    *,
    namespace: str = "default",
    cpu: str = "",
    memory: str = "",
    node: str = "",
    labels: dict[str, str] | None = None,
    priority: int | None = None,
    extra: dict[str, str] | None = None,
    ports: list[tuple[int, str, str]] | None = None,
    init: list[dict[str, str]] | None = None,
    image: str = "busybox:1.0",
    created: int = 1000,
    **spec: Any,
) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = name, namespace
    pod.metadata.uid = f"uid-{next(_uids)}"
    pod.metadata.creation_timestamp.FromSeconds(created)
    pod.metadata.labels.update(labels or {})
    container = pod.spec.containers.add(name="c", image=image)
    if cpu:
        container.resources.requests["cpu"] = cpu
    if memory:
        container.resources.requests["memory"] = memory
    for key, value in (extra or {}).items():
        container.resources.requests[key] = value
    for host_port, protocol, host_ip in ports or []:
        container.ports.add(container_port=host_port, host_port=host_port, protocol=protocol, host_ip=host_ip)
    for requests in init or []:
        init_container = pod.spec.init_containers.add(
            name=f"init{len(pod.spec.init_containers)}", image=image
        )
        init_container.resources.requests.update(requests)
    pod.spec.node_name = node
    pod.spec.scheduler_name = "default-scheduler"
    if priority is not None:
        pod.spec.priority = priority
    for key, value in spec.items():
        if isinstance(value, str | int | bool):
            setattr(pod.spec, key, value)
            continue
        target = getattr(pod.spec, key)
        if isinstance(value, dict) and not hasattr(target, "CopyFrom"):
            target.update(value)
        elif isinstance(value, list):
            target.extend(value)
        else:
            target.CopyFrom(value)
    return pod


def make_node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[tuple[str, str, str]] | None = None,
    unschedulable: bool = False,
    ready: bool = True,
    extra: dict[str, str] | None = None,
    images: dict[str, int] | None = None,
) -> core_pb2.Node:
    node = core_pb2.Node()
    node.metadata.name = name
    node.metadata.labels.update({"kubernetes.io/hostname": name, **(labels or {})})
    for key, value in {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}.items():
        node.status.allocatable[key] = value
        node.status.capacity[key] = value
    for key, value, effect in taints or []:
        node.spec.taints.add(key=key, value=value, effect=effect)
    node.spec.unschedulable = unschedulable
    node.status.conditions.add(type="Ready", status="True" if ready else "False")
    for image, size in (images or {}).items():
        node.status.images.add(names=[image], size_bytes=size)
    return node


def cluster(nodes: list[core_pb2.Node], pods: list[core_pb2.Pod] = ()) -> Cache:  # type: ignore[assignment]
    cache = Cache()
    for node in nodes:
        cache.add_node(node)
    for pod in pods:
        cache.add_pod(pod_info(pod))
    return cache


def framework(cache: Cache, config: SchedulerConfig | None = None, seed: int = 1) -> Framework:
    import random

    return Framework(config or SchedulerConfig(), cache, random.Random(seed))


def info(pod: core_pb2.Pod) -> PodInfo:
    return pod_info(pod)
