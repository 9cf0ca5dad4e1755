"""The kubelet's Node: registration (name, addresses, labels, capacity and allocatable, node
info), and the status it keeps current: the Ready condition from the runtime's Status
(RuntimeReady and NetworkReady), memory/disk/PID pressure from the machine, the kubelet's
endpoint. Written when something changed, and at least every `report_interval` seconds so
the heartbeat times stay fresh (the Lease is the frequent heartbeat)."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.errors import AlreadyExistsError, ConflictError, NotFoundError
from services.kubelet.config import KUBELET_VERSION, KubeletConfig
from services.kubelet.cri_client import CRI, CRIError
from services.machinery.logs import get_logger

log = get_logger(__name__)

ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}
MEMORY_PRESSURE_BYTES = 100 * 1024 * 1024
DISK_PRESSURE_FRACTION = 0.10
PID_PRESSURE_FRACTION = 0.90
REPORT_INTERVAL = 60.0


def _meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                values[key] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    except OSError:
        pass
    return values


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def architecture() -> str:
    machine = platform.machine()
    return ARCHES.get(machine, machine)


@dataclass
class RuntimeHealth:
    runtime_ready: bool = False
    network_ready: bool = False
    message: str = "container runtime status check may not have completed yet"
    runtime_version: str = ""


@dataclass
class Pressure:
    memory: bool = False
    disk: bool = False
    pid: bool = False
    details: dict[str, str] = field(default_factory=dict)


def pressure(root_dir: Path) -> Pressure:
    result = Pressure()
    mem = _meminfo()
    available = mem.get("MemAvailable", MEMORY_PRESSURE_BYTES * 2)
    result.memory = available < MEMORY_PRESSURE_BYTES
    try:
        st = os.statvfs(root_dir if root_dir.exists() else "/")
        result.disk = st.f_blocks > 0 and st.f_bavail / st.f_blocks < DISK_PRESSURE_FRACTION
    except OSError:
        result.disk = False
    try:
        pid_max = int(_read("/proc/sys/kernel/pid_max", "32768"))
        running = int(_read("/proc/loadavg", "0 0 0 0/0").split()[3].split("/")[1])
        result.pid = running > pid_max * PID_PRESSURE_FRACTION
    except (ValueError, IndexError):
        result.pid = False
    return result


def capacity(config: KubeletConfig) -> dict[str, str]:
    mem = _meminfo().get("MemTotal", 0)
    try:
        st = os.statvfs(config.root_dir if config.root_dir.exists() else "/")
        disk = st.f_blocks * st.f_frsize
    except OSError:
        disk = 0
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{mem // 1024}Ki",
        "pods": str(config.max_pods),
        "ephemeral-storage": f"{disk // 1024}Ki",
    }


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns() // 1_000_000_000 * 1_000_000_000)
    return stamp


class NodeStatusManager:
    def __init__(self, config: KubeletConfig, client: Client, runtime: CRI, node_api_port: int = 0) -> None:
        self.config = config
        self.client = client
        self.runtime = runtime
        self.node_api_port = node_api_port
        self.health = RuntimeHealth()
        self.host_ip = config.node_ip
        self._last_written: core_pb2.NodeStatus | None = None
        self._last_write = 0.0

    def labels(self) -> dict[str, str]:
        return {
            "kubernetes.io/hostname": self.config.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": architecture(),
            **self.config.node_labels,
        }

    async def refresh_runtime(self) -> RuntimeHealth:
        health = RuntimeHealth(runtime_version=self.health.runtime_version)
        try:
            if not health.runtime_version:
                version = await self.runtime.version()
                health.runtime_version = f"{version.runtime_name}://{version.runtime_version}"
            status = await self.runtime.status()
        except CRIError as exc:
            health.message = f"container runtime is down: {exc.details or exc.code.name}"
            self.health = health
            return health
        conditions = {c.type: c for c in status.status.conditions}
        runtime, network = conditions.get("RuntimeReady"), conditions.get("NetworkReady")
        health.runtime_ready = bool(runtime and runtime.status)
        health.network_ready = bool(network and network.status)
        problems = []
        for name, cond in (("RuntimeReady", runtime), ("NetworkReady", network)):
            if cond is None or not cond.status:
                reason = cond.reason if cond is not None else "Unknown"
                message = cond.message if cond is not None else "not reported"
                problems.append(f"{name}=false reason:{reason} message:{message}")
        if not health.runtime_ready:
            health.message = "container runtime not ready: " + "; ".join(problems)
        elif not health.network_ready:
            health.message = "container runtime network not ready: " + "; ".join(problems)
        else:
            health.message = "kubelet is posting ready status"
        self.health = health
        return health

    def _condition(
        self, old: core_pb2.NodeStatus, type_: str, status: bool, reason: str, message: str
    ) -> core_pb2.NodeCondition:
        value = "True" if status else "False"
        condition = core_pb2.NodeCondition(type=type_, status=value, reason=reason, message=message)
        condition.last_heartbeat_time.CopyFrom(_now())
        previous = next((c for c in old.conditions if c.type == type_), None)
        if previous is not None and previous.status == value and previous.HasField("last_transition_time"):
            condition.last_transition_time.CopyFrom(previous.last_transition_time)
        else:
            condition.last_transition_time.CopyFrom(condition.last_heartbeat_time)
        return condition

    def build_status(self, old: core_pb2.NodeStatus) -> core_pb2.NodeStatus:
        cap = capacity(self.config)
        status = core_pb2.NodeStatus(capacity=cap, allocatable=cap)
        if self.host_ip:
            status.addresses.add(type="InternalIP", address=self.host_ip)
        status.addresses.add(type="Hostname", address=self.config.node_name)
        status.daemon_endpoints.kubelet_endpoint.port = self.node_api_port
        info = status.node_info
        info.machine_id = _read("/etc/machine-id")
        info.system_uuid = _read("/sys/class/dmi/id/product_uuid")
        info.boot_id = _read("/proc/sys/kernel/random/boot_id")
        info.kernel_version = platform.release()
        info.os_image = os_image()
        info.container_runtime_version = self.health.runtime_version
        info.kubelet_version = KUBELET_VERSION
        info.operating_system = "linux"
        info.architecture = architecture()
        p = pressure(self.config.root_dir)
        status.conditions.extend(
            [
                self._condition(
                    old, "MemoryPressure", p.memory,
                    "KubeletHasInsufficientMemory" if p.memory else "KubeletHasSufficientMemory",
                    f"kubelet has {'insufficient' if p.memory else 'sufficient'} memory available",
                ),
                self._condition(
                    old, "DiskPressure", p.disk,
                    "KubeletHasDiskPressure" if p.disk else "KubeletHasNoDiskPressure",
                    "kubelet has disk pressure" if p.disk else "kubelet has no disk pressure",
                ),
                self._condition(
                    old, "PIDPressure", p.pid,
                    "KubeletHasInsufficientPID" if p.pid else "KubeletHasSufficientPID",
                    f"kubelet has {'insufficient' if p.pid else 'sufficient'} PID available",
                ),
            ]
        )  # fmt: skip
        ready = self.health.runtime_ready and self.health.network_ready
        status.conditions.append(
            self._condition(
                old, "Ready", ready, "KubeletReady" if ready else "KubeletNotReady", self.health.message
            )
        )
        status.images.extend(old.images)
        return status

    def new_node(self) -> core_pb2.Node:
        node = core_pb2.Node()
        node.metadata.name = self.config.node_name
        node.metadata.labels.update(self.labels())
        node.status.CopyFrom(self.build_status(core_pb2.NodeStatus()))
        return node

    async def register(self) -> core_pb2.Node:
        """Create the Node, or adopt the existing one (a restart, or a pre-created Node)."""
        if self.config.register_node:
            try:
                created = await self.client.create(self.new_node())
                log.info("node registered", node=self.config.node_name)
                await self.update(force=True)
                return created
            except AlreadyExistsError:
                pass
        node = await self.client.get(core_pb2.Node, self.config.node_name)
        assert isinstance(node, core_pb2.Node)
        if self.config.register_node:
            missing = {k: v for k, v in self.labels().items() if node.metadata.labels.get(k) != v}
            if missing:
                patched = await self.client.patch(
                    core_pb2.Node, self.config.node_name, {"metadata": {"labels": missing}}
                )
                assert isinstance(patched, core_pb2.Node)
                node = patched
        await self.update(force=True)
        return node

    def _material(self, status: core_pb2.NodeStatus) -> core_pb2.NodeStatus:
        """The status without heartbeat times, to tell a real change from a heartbeat."""
        copy = core_pb2.NodeStatus()
        copy.CopyFrom(status)
        for condition in copy.conditions:
            condition.ClearField("last_heartbeat_time")
        return copy

    async def update(self, *, force: bool = False) -> core_pb2.Node | None:
        await self.refresh_runtime()
        for _ in range(3):
            try:
                node = await self.client.get(core_pb2.Node, self.config.node_name)
            except NotFoundError:
                log.warning("node object not found", node=self.config.node_name)
                return None
            assert isinstance(node, core_pb2.Node)
            status = self.build_status(node.status)
            changed = self._material(status) != self._material(node.status)
            due = time.monotonic() - self._last_write >= REPORT_INTERVAL
            if not (changed or due or force):
                return node
            node.status.CopyFrom(status)
            try:
                updated = await self.client.update_status(node)
            except ConflictError:
                continue
            self._last_write = time.monotonic()
            return updated
        return None
