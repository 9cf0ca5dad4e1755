"""The stats summary (the kubelet's /stats/summary, what cAdvisor feeds in Kubernetes): node
CPU, memory and filesystem from /proc and statvfs, per pod and per container CPU and memory
from the runtime's ListPodSandboxStats. CPU rates (nanocores) come from the difference with
the previous sample this kubelet took."""

from __future__ import annotations

import os
import time
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.cri.v1 import api_pb2 as cri
from pinnace.kubelet.v1 import kubelet_pb2 as pb
from services.kubelet import labels as keys
from services.kubelet.cri_client import CRI
from services.kubelet.node_status import _meminfo

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _ts(ns: int | None = None) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds((ns if ns else time.time_ns()) // 1000 * 1000)
    return stamp


def _node_cpu_ns() -> int:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0
    busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))  # minus idle, iowait
    return busy * 1_000_000_000 // _CLOCK_TICKS


def _boot_time() -> float:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


class StatsProvider:
    def __init__(self, runtime: CRI, node_name: str, root_dir: Path) -> None:
        self.runtime = runtime
        self.node_name = node_name
        self.root_dir = root_dir
        self._previous: dict[str, tuple[int, int]] = {}  # key -> (timestamp ns, cpu ns)

    def _rate(self, key: str, timestamp: int, cumulative: int) -> int | None:
        previous = self._previous.get(key)
        self._previous[key] = (timestamp, cumulative)
        if previous is None or timestamp <= previous[0] or cumulative < previous[1]:
            return None
        return (cumulative - previous[1]) * 1_000_000_000 // (timestamp - previous[0])

    def _cpu(self, key: str, usage: cri.CpuUsage) -> pb.CPUStats:
        out = pb.CPUStats(time=_ts(usage.timestamp))
        if usage.HasField("usage_core_nano_seconds"):
            out.usage_core_nano_seconds = usage.usage_core_nano_seconds.value
            rate = (
                usage.usage_nano_cores.value
                if usage.HasField("usage_nano_cores")
                else self._rate(key, usage.timestamp, usage.usage_core_nano_seconds.value)
            )
            if rate is not None:
                out.usage_nano_cores = rate
        return out

    @staticmethod
    def _memory(usage: cri.MemoryUsage) -> pb.MemoryStats:
        out = pb.MemoryStats(time=_ts(usage.timestamp))
        for name in ("working_set_bytes", "available_bytes", "usage_bytes", "rss_bytes"):
            if usage.HasField(name):
                setattr(out, name, getattr(usage, name).value)
        return out

    def node(self) -> pb.NodeStats:
        now = time.time_ns()
        mem = _meminfo()
        cpu_ns = _node_cpu_ns()
        cpu = pb.CPUStats(time=_ts(now), usage_core_nano_seconds=cpu_ns)
        rate = self._rate("node", now, cpu_ns)
        if rate is not None:
            cpu.usage_nano_cores = rate
        total, available = mem.get("MemTotal", 0), mem.get("MemAvailable", 0)
        memory = pb.MemoryStats(
            time=_ts(now),
            available_bytes=available,
            usage_bytes=total - mem.get("MemFree", 0),
            working_set_bytes=max(0, total - available),
        )
        fs = pb.FsStats(time=_ts(now))
        try:
            st = os.statvfs(self.root_dir if self.root_dir.exists() else "/")
            fs.capacity_bytes = st.f_blocks * st.f_frsize
            fs.available_bytes = st.f_bavail * st.f_frsize
            fs.used_bytes = (st.f_blocks - st.f_bfree) * st.f_frsize
        except OSError:
            pass
        start = Timestamp()
        start.FromSeconds(int(_boot_time()))
        return pb.NodeStats(node_name=self.node_name, start_time=start, cpu=cpu, memory=memory, fs=fs)

    async def summary(self) -> pb.Summary:
        summary = pb.Summary(node=self.node())
        response = await self.runtime.call(
            "ListPodSandboxStats",
            cri.ListPodSandboxStatsRequest(
                filter=cri.PodSandboxStatsFilter(label_selector={keys.MANAGED_BY: "true"})
            ),
        )
        sandboxes = {sb.id: sb for sb in await self.runtime.list_sandboxes({keys.MANAGED_BY: "true"})}
        for stats in response.stats:
            attrs = stats.attributes
            sandbox = sandboxes.get(attrs.id)
            if sandbox is not None and sandbox.state != cri.SANDBOX_READY:
                continue
            pod = pb.PodStats(
                pod_ref=pb.PodRef(
                    namespace=attrs.metadata.namespace, name=attrs.metadata.name, uid=attrs.metadata.uid
                ),
                start_time=_ts(sandbox.created_at if sandbox is not None else None),
                cpu=self._cpu(f"pod/{attrs.id}", stats.linux.cpu),
                memory=self._memory(stats.linux.memory),
            )
            iface = stats.linux.network.default_interface
            if iface.name:
                pod.network.CopyFrom(
                    pb.NetworkStats(
                        time=_ts(stats.linux.network.timestamp),
                        name=iface.name,
                        rx_bytes=iface.rx_bytes.value,
                        tx_bytes=iface.tx_bytes.value,
                    )
                )
            if stats.linux.process.HasField("process_count"):
                pod.process_count = stats.linux.process.process_count.value
            for container in stats.linux.containers:
                name = container.attributes.labels.get(
                    keys.CONTAINER_NAME, container.attributes.metadata.name
                )
                entry = pb.ContainerStats(
                    name=name,
                    cpu=self._cpu(f"container/{container.attributes.id}", container.cpu),
                    memory=self._memory(container.memory),
                )
                if container.writable_layer.HasField("used_bytes"):
                    entry.rootfs.used_bytes = container.writable_layer.used_bytes.value
                pod.containers.append(entry)
            summary.pods.append(pod)
        return summary
