"""Resource metrics, as metrics-server derives them for metrics.k8s.io, from the kubelets' stats
summaries read through the apiserver (NodeProxy.NodeStats): a node's CPU is its usageNanoCores
and its memory its working set; a pod's are the sums over its containers (a container counts
only with both). `pinctl top` and the HPA controller read them here.

The kubelet reports a CPU rate only from its second sample on (the rate is the difference with
the previous one), so a summary whose rates are missing is read once more after a pause."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from pinnace.kubelet.v1 import kubelet_pb2 as kpb
from services.client.errors import APIStatusError
from services.client.streams import NodeProxyClient

RESAMPLE_AFTER_SECONDS = 1.0


@dataclass(frozen=True)
class Usage:
    cpu_nanocores: int
    memory_bytes: int

    @property
    def cpu_millicores(self) -> int:
        return self.cpu_nanocores // 1_000_000


@dataclass
class PodUsage:
    namespace: str
    name: str
    usage: Usage
    containers: dict[str, Usage] = field(default_factory=dict)


def _usage(cpu: kpb.CPUStats, memory: kpb.MemoryStats) -> Usage | None:
    if not (cpu.HasField("usage_nano_cores") and memory.HasField("working_set_bytes")):
        return None
    return Usage(cpu.usage_nano_cores, memory.working_set_bytes)


def node_usage(summary: kpb.Summary) -> Usage | None:
    return _usage(summary.node.cpu, summary.node.memory)


def pod_usages(summary: kpb.Summary) -> list[PodUsage]:
    """Pods with at least one container that has both a CPU rate and a working set."""
    pods = []
    for stats in summary.pods:
        containers = {
            c.name: usage for c in stats.containers if (usage := _usage(c.cpu, c.memory)) is not None
        }
        if not containers:
            continue
        total = Usage(
            sum(u.cpu_nanocores for u in containers.values()),
            sum(u.memory_bytes for u in containers.values()),
        )
        pods.append(PodUsage(stats.pod_ref.namespace, stats.pod_ref.name, total, containers))
    return pods


def _complete(summary: kpb.Summary) -> bool:
    return node_usage(summary) is not None and all(
        c.cpu.HasField("usage_nano_cores") for p in summary.pods for c in p.containers
    )


async def summaries(
    proxy: NodeProxyClient, nodes: Iterable[str], *, resample_after: float = RESAMPLE_AFTER_SECONDS
) -> dict[str, kpb.Summary | APIStatusError]:
    """Each node's summary (or why it could not be read), read concurrently; nodes whose
    first answer lacks CPU rates are asked again once after `resample_after` seconds."""
    names = sorted(set(nodes))

    async def read(node: str) -> kpb.Summary | APIStatusError:
        try:
            return await proxy.node_stats(node)
        except APIStatusError as exc:
            return exc

    results = dict(zip(names, await asyncio.gather(*(read(n) for n in names)), strict=True))
    again = [n for n, r in results.items() if isinstance(r, kpb.Summary) and not _complete(r)]
    if again:
        await asyncio.sleep(resample_after)
        results.update(zip(again, await asyncio.gather(*(read(n) for n in again)), strict=True))
    return results
