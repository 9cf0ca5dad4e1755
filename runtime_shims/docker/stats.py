"""Resource usage from Docker's one-shot stats: CPU as cumulative core-nanoseconds, memory
working set (usage minus inactive file cache, as the kubelet and cAdvisor define it), the
writable layer, and per pod the sum over its containers plus the sandbox's network counters
read from /proc/<pause pid>/net/dev."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from docker import errors as docker_errors

from pinnace.cri.v1 import api_pb2 as cri
from runtime_shims.docker import labels as schema
from runtime_shims.docker.backend import Backend
from runtime_shims.docker.errors import from_docker

_U64 = cri.UInt64Value


def working_set(memory_stats: dict[str, Any]) -> int:
    usage = int(memory_stats.get("usage") or 0)
    stats = memory_stats.get("stats") or {}
    inactive = int(stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0)
    return max(0, usage - inactive)


def usage_messages(raw: dict[str, Any], now: int) -> tuple[cri.CpuUsage, cri.MemoryUsage]:
    cpu_total = int(((raw.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0)
    memory_stats = raw.get("memory_stats") or {}
    usage = int(memory_stats.get("usage") or 0)
    limit = int(memory_stats.get("limit") or 0)
    ws = working_set(memory_stats)
    stats = memory_stats.get("stats") or {}
    memory = cri.MemoryUsage(
        timestamp=now,
        working_set_bytes=_U64(value=ws),
        usage_bytes=_U64(value=usage),
        rss_bytes=_U64(value=int(stats.get("total_rss", stats.get("anon", 0)) or 0)),
        page_faults=_U64(value=int(stats.get("total_pgfault", stats.get("pgfault", 0)) or 0)),
        major_page_faults=_U64(value=int(stats.get("total_pgmajfault", stats.get("pgmajfault", 0)) or 0)),
    )
    if limit:
        memory.available_bytes.value = max(0, limit - ws)
    cpu = cri.CpuUsage(timestamp=now, usage_core_nano_seconds=_U64(value=cpu_total))
    return cpu, memory


def network_usage(pid: int, now: int) -> cri.NetworkUsage:
    usage = cri.NetworkUsage(timestamp=now)
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return usage
    for line in lines:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if len(fields) < 16 or name.strip() == "lo":
            continue
        iface = cri.NetworkInterfaceUsage(
            name=name.strip(),
            rx_bytes=_U64(value=int(fields[0])),
            rx_errors=_U64(value=int(fields[2])),
            tx_bytes=_U64(value=int(fields[8])),
            tx_errors=_U64(value=int(fields[10])),
        )
        if iface.name == "eth0":
            usage.default_interface.CopyFrom(iface)
        else:
            usage.interfaces.append(iface)
    return usage


class Stats:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.api = backend.api
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="stats")

    def _raw(self, container_id: str) -> dict[str, Any] | None:
        try:
            raw: dict[str, Any] = self.api.stats(container_id, stream=False, one_shot=True)
        except docker_errors.NotFound:
            return None
        return raw

    def _writable_layer(self, container_id: str, now: int) -> cri.FilesystemUsage:
        root = ""
        used = 0
        try:
            info = self.api._result(
                self.api._get(self.api._url("/containers/{0}/json", container_id), params={"size": 1}), True
            )
            used = int(info.get("SizeRw") or 0)
            root = str(info.get("GraphDriver", {}).get("Data", {}).get("UpperDir", ""))
        except docker_errors.DockerException:
            pass
        return cri.FilesystemUsage(
            timestamp=now, fs_id=cri.FilesystemIdentifier(mountpoint=root), used_bytes=_U64(value=used)
        )

    def container(self, container_id: str) -> cri.ContainerStats:
        record, _ = self.backend.container_record(container_id)
        return self._container_stats(record)

    def _container_stats(self, record: schema.ContainerRecord) -> cri.ContainerStats:
        now = time.time_ns()
        try:
            raw = self._raw(record.id) or {}
        except docker_errors.DockerException as exc:
            raise from_docker(exc, f"container stats {record.id}") from exc
        cpu, memory = usage_messages(raw, now)
        return cri.ContainerStats(
            attributes=cri.ContainerAttributes(
                id=record.id, metadata=record.metadata, labels=record.labels, annotations=record.annotations
            ),
            cpu=cpu,
            memory=memory,
            writable_layer=self._writable_layer(record.id, now),
        )

    def list_containers(self, flt: cri.ContainerStatsFilter | None) -> list[cri.ContainerStats]:
        selector = dict(flt.label_selector) if flt is not None else {}
        filters: dict[str, Any] = {
            "label": schema.selector_filters(self.backend.node, schema.TYPE_CONTAINER, selector)
        }
        if flt is not None and flt.pod_sandbox_id:
            filters["label"].append(f"{schema.SANDBOX_ID}={flt.pod_sandbox_id}")
        if flt is not None and flt.id:
            filters["id"] = flt.id
        records = [
            schema.parse_container(c["Id"], c.get("Labels") or {})
            for c in self.api.containers(filters=filters)
            if flt is None or not flt.id or c["Id"].startswith(flt.id)
        ]
        return list(self._pool.map(self._container_stats, records))

    def pod(self, sandbox_id: str) -> cri.PodSandboxStats:
        info = self.backend.inspect(sandbox_id, schema.TYPE_SANDBOX, "pod sandbox")
        record = schema.parse_sandbox(info["Id"], info["Config"]["Labels"])
        return self._pod_stats(record, int(info["State"].get("Pid") or 0))

    def _pod_stats(self, record: schema.SandboxRecord, pid: int) -> cri.PodSandboxStats:
        now = time.time_ns()
        filters = {"label": [f"{schema.SANDBOX_ID}={record.id}", f"{schema.NODE}={self.backend.node}"]}
        members = [
            schema.parse_container(c["Id"], c.get("Labels") or {})
            for c in self.api.containers(filters=filters)
        ]
        containers = list(self._pool.map(self._container_stats, members))
        pause = self._raw(record.id) or {}
        pause_cpu, pause_memory = usage_messages(pause, now)
        cpu_total = pause_cpu.usage_core_nano_seconds.value + sum(
            c.cpu.usage_core_nano_seconds.value for c in containers
        )
        ws_total = pause_memory.working_set_bytes.value + sum(
            c.memory.working_set_bytes.value for c in containers
        )
        usage_total = pause_memory.usage_bytes.value + sum(c.memory.usage_bytes.value for c in containers)
        processes = int((pause.get("pids_stats") or {}).get("current") or 0)
        linux = cri.LinuxPodSandboxStats(
            cpu=cri.CpuUsage(timestamp=now, usage_core_nano_seconds=_U64(value=cpu_total)),
            memory=cri.MemoryUsage(
                timestamp=now, working_set_bytes=_U64(value=ws_total), usage_bytes=_U64(value=usage_total)
            ),
            network=network_usage(pid, now) if pid > 0 else cri.NetworkUsage(timestamp=now),
            process=cri.ProcessUsage(timestamp=now, process_count=_U64(value=processes + len(containers))),
            containers=containers,
        )
        return cri.PodSandboxStats(
            attributes=cri.PodSandboxAttributes(
                id=record.id, metadata=record.metadata, labels=record.labels, annotations=record.annotations
            ),
            linux=linux,
        )

    def list_pods(self, flt: cri.PodSandboxStatsFilter | None) -> list[cri.PodSandboxStats]:
        selector = dict(flt.label_selector) if flt is not None else {}
        filters: dict[str, Any] = {
            "label": schema.selector_filters(self.backend.node, schema.TYPE_SANDBOX, selector)
        }
        out = []
        for c in self.api.containers(filters=filters):
            if flt is not None and flt.id and not c["Id"].startswith(flt.id):
                continue
            out.append(self.pod(c["Id"]))
        return out
