"""What the runtime holds for one pod, read fresh from CRI on every sync (the "actual" side
of the level-triggered comparison): its sandboxes and containers, newest first, with the
details the status needs. Restart counts, spec hashes and the like come from the CRI
annotations the kubelet wrote, so a restarted kubelet reads the same state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pinnace.cri.v1 import api_pb2 as cri
from services.kubelet import labels as keys
from services.kubelet.cri_client import CRI, CRIError


@dataclass
class ContainerInfo:
    id: str
    name: str
    sandbox_id: str
    state: int
    created_at: int
    attempt: int
    restart_count: int = 0
    hash: str = ""
    init: bool = False
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    image: str = ""
    image_ref: str = ""
    log_path: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.state == cri.CONTAINER_RUNNING

    @property
    def exited(self) -> bool:
        return self.state in (cri.CONTAINER_EXITED, cri.CONTAINER_UNKNOWN) or (
            self.state == cri.CONTAINER_CREATED and self.finished_at > 0
        )


@dataclass
class SandboxInfo:
    id: str
    ready: bool
    attempt: int
    created_at: int
    ip: str = ""


@dataclass
class PodRuntime:
    uid: str
    sandboxes: list[SandboxInfo] = field(default_factory=list)
    containers: list[ContainerInfo] = field(default_factory=list)

    def current_sandbox(self) -> SandboxInfo | None:
        return next((s for s in self.sandboxes if s.ready), None)

    def of(self, name: str, init: bool = False) -> list[ContainerInfo]:
        return [c for c in self.containers if c.name == name and c.init == init]

    def latest(self, name: str, init: bool = False) -> ContainerInfo | None:
        found = self.of(name, init)
        return found[0] if found else None

    def previous(self, name: str, init: bool = False) -> ContainerInfo | None:
        found = self.of(name, init)
        return found[1] if len(found) > 1 else None

    @property
    def running_containers(self) -> list[ContainerInfo]:
        return [c for c in self.containers if c.running]

    @property
    def empty(self) -> bool:
        return not self.sandboxes and not self.containers


def _container(item: cri.Container) -> ContainerInfo:
    annotations = dict(item.annotations)
    return ContainerInfo(
        id=item.id,
        name=item.labels.get(keys.CONTAINER_NAME, item.metadata.name),
        sandbox_id=item.pod_sandbox_id,
        state=item.state,
        created_at=item.created_at,
        attempt=item.metadata.attempt,
        restart_count=int(annotations.get(keys.RESTART_COUNT, item.metadata.attempt) or 0),
        hash=annotations.get(keys.CONTAINER_HASH, ""),
        init=annotations.get(keys.INIT_CONTAINER) == "true",
        image=item.image.image,
        image_ref=item.image_ref,
        annotations=annotations,
    )


def _add_status(info: ContainerInfo, status: cri.ContainerStatus) -> None:
    info.state = status.state
    info.started_at, info.finished_at = status.started_at, status.finished_at
    info.exit_code, info.reason, info.message = status.exit_code, status.reason, status.message
    info.image = status.image.image or info.image
    info.image_ref = status.image_ref or info.image_ref
    info.log_path = status.log_path


async def read_pod(runtime: CRI, uid: str, *, details: int = 2) -> PodRuntime:
    """The pod's sandboxes and containers; the `details` newest containers per name get a
    ContainerStatus call (times, exit code), the older ones only what the list says."""
    selector = {keys.POD_UID: uid}
    sandboxes, containers = await asyncio.gather(
        runtime.list_sandboxes(selector), runtime.list_containers(selector)
    )
    pod = PodRuntime(uid)
    for sb in sorted(sandboxes, key=lambda s: s.created_at, reverse=True):
        pod.sandboxes.append(
            SandboxInfo(sb.id, sb.state == cri.SANDBOX_READY, sb.metadata.attempt, sb.created_at)
        )
    pod.containers = sorted((_container(c) for c in containers), key=lambda c: c.created_at, reverse=True)
    seen: dict[tuple[str, bool], int] = {}
    wanted: list[ContainerInfo] = []
    for info in pod.containers:
        key = (info.name, info.init)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= details or info.running:
            wanted.append(info)

    gone: set[str] = set()

    async def detail(info: ContainerInfo) -> None:
        try:
            _add_status(info, await runtime.container_status(info.id))
        except CRIError as exc:
            if not exc.not_found:
                raise
            gone.add(info.id)

    async def sandbox_ip(sb: SandboxInfo) -> None:
        try:
            status = await runtime.sandbox_status(sb.id)
        except CRIError as exc:
            if not exc.not_found:
                raise
            sb.ready = False
            return
        sb.ip = status.network.ip
        sb.ready = status.state == cri.SANDBOX_READY

    current = pod.current_sandbox()
    await asyncio.gather(
        *(detail(c) for c in wanted), *([sandbox_ip(current)] if current is not None else [])
    )
    pod.containers = [c for c in pod.containers if c.id not in gone]
    return pod
