"""The Docker-label state schema: everything the shim must remember about a sandbox or a
container is written into the Docker labels of its container at creation, so the shim keeps
no state of its own and a restarted shim manages everything its predecessors created.

User labels are also stored verbatim as Docker labels, so that label selectors become Docker
label filters (one list call, filtered by dockerd). The authoritative copies of labels and
annotations are the JSON documents under `io.pinnace.cri.labels` and
`io.pinnace.cri.annotations`, which round-trip every key and value exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pinnace.cri.v1 import api_pb2 as cri
from runtime_shims.docker.errors import invalid

PREFIX = "io.pinnace.cri."
SCHEMA = PREFIX + "schema"
SCHEMA_VERSION = "1"
TYPE = PREFIX + "type"
TYPE_SANDBOX = "podsandbox"
TYPE_CONTAINER = "container"
NODE = PREFIX + "node"
METADATA = PREFIX + "metadata"
LABELS = PREFIX + "labels"
ANNOTATIONS = PREFIX + "annotations"
CREATED_AT = PREFIX + "created-at"
SANDBOX_ID = PREFIX + "sandbox-id"
LOG_DIRECTORY = PREFIX + "log-directory"
LOG_PATH = PREFIX + "log-path"
RUNTIME_HANDLER = PREFIX + "runtime-handler"
NAMESPACES = PREFIX + "namespaces"
PORT_MAPPINGS = PREFIX + "port-mappings"
IMAGE = PREFIX + "image"
MOUNTS = PREFIX + "mounts"
USER = PREFIX + "user"

_NAMESPACE_MODES = {"network": "POD", "pid": "CONTAINER", "ipc": "POD"}


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def check_user_labels(labels: dict[str, str], what: str) -> None:
    """The shim's own prefix is reserved: a user label there could forge the shim's state."""
    for key in labels:
        if key.startswith(PREFIX):
            raise invalid(f"{what}: label key {key!r} uses the prefix {PREFIX!r} reserved by the runtime")
        if not key:
            raise invalid(f"{what}: label keys must not be empty")


def namespace_modes(options: cri.NamespaceOption) -> dict[str, str]:
    return {
        "network": cri.NamespaceMode.Name(options.network),
        "pid": cri.NamespaceMode.Name(options.pid),
        "ipc": cri.NamespaceMode.Name(options.ipc),
    }


def sandbox_labels(
    config: cri.PodSandboxConfig, *, node: str, created_at: int, runtime_handler: str
) -> dict[str, str]:
    md = config.metadata
    options = config.linux.security_context.namespace_options
    ports = [
        {
            "protocol": cri.Protocol.Name(p.protocol),
            "container_port": p.container_port,
            "host_port": p.host_port,
            "host_ip": p.host_ip,
        }
        for p in config.port_mappings
    ]
    labels = dict(config.labels)
    labels.update(
        {
            SCHEMA: SCHEMA_VERSION,
            TYPE: TYPE_SANDBOX,
            NODE: node,
            METADATA: _dump(
                {"name": md.name, "uid": md.uid, "namespace": md.namespace, "attempt": md.attempt}
            ),
            LABELS: _dump(dict(config.labels)),
            ANNOTATIONS: _dump(dict(config.annotations)),
            CREATED_AT: str(created_at),
            LOG_DIRECTORY: config.log_directory,
            RUNTIME_HANDLER: runtime_handler,
            NAMESPACES: _dump(namespace_modes(options)),
            PORT_MAPPINGS: _dump(ports),
        }
    )
    return labels


def container_labels(
    config: cri.ContainerConfig, *, node: str, sandbox_id: str, created_at: int, log_path: str
) -> dict[str, str]:
    mounts = [
        {
            "container_path": m.container_path,
            "host_path": m.host_path,
            "readonly": m.readonly,
            "selinux_relabel": m.selinux_relabel,
            "propagation": cri.MountPropagation.Name(m.propagation),
        }
        for m in config.mounts
    ]
    sc = config.linux.security_context
    user: dict[str, Any] = {}
    if sc.HasField("run_as_user"):
        user["uid"] = sc.run_as_user.value
    if sc.HasField("run_as_group"):
        user["gid"] = sc.run_as_group.value
    if sc.supplemental_groups:
        user["groups"] = list(sc.supplemental_groups)
    labels = dict(config.labels)
    labels.update(
        {
            SCHEMA: SCHEMA_VERSION,
            TYPE: TYPE_CONTAINER,
            NODE: node,
            SANDBOX_ID: sandbox_id,
            METADATA: _dump({"name": config.metadata.name, "attempt": config.metadata.attempt}),
            LABELS: _dump(dict(config.labels)),
            ANNOTATIONS: _dump(dict(config.annotations)),
            CREATED_AT: str(created_at),
            LOG_PATH: log_path,
            IMAGE: config.image.image,
            MOUNTS: _dump(mounts),
            USER: _dump(user),
        }
    )
    return labels


def _load(labels: dict[str, str], key: str, default: Any) -> Any:
    raw = labels.get(key)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


@dataclass(frozen=True)
class SandboxRecord:
    """What the labels of a pause container say about its sandbox."""

    id: str
    metadata: cri.PodSandboxMetadata
    labels: dict[str, str]
    annotations: dict[str, str]
    created_at: int
    log_directory: str
    runtime_handler: str
    namespaces: dict[str, str]
    port_mappings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def host_network(self) -> bool:
        return self.namespaces.get("network") == "NODE"

    def namespace_option(self) -> cri.NamespaceOption:
        return cri.NamespaceOption(
            network=self.namespaces.get("network", "POD"),
            pid=self.namespaces.get("pid", "CONTAINER"),
            ipc=self.namespaces.get("ipc", "POD"),
        )


def parse_sandbox(container_id: str, labels: dict[str, str]) -> SandboxRecord:
    md = _load(labels, METADATA, {})
    namespaces = dict(_NAMESPACE_MODES)
    namespaces.update(_load(labels, NAMESPACES, {}))
    return SandboxRecord(
        id=container_id,
        metadata=cri.PodSandboxMetadata(
            name=md.get("name", ""),
            uid=md.get("uid", ""),
            namespace=md.get("namespace", ""),
            attempt=int(md.get("attempt", 0)),
        ),
        labels=_load(labels, LABELS, {}),
        annotations=_load(labels, ANNOTATIONS, {}),
        created_at=int(labels.get(CREATED_AT, "0") or 0),
        log_directory=labels.get(LOG_DIRECTORY, ""),
        runtime_handler=labels.get(RUNTIME_HANDLER, ""),
        namespaces=namespaces,
        port_mappings=_load(labels, PORT_MAPPINGS, []),
    )


@dataclass(frozen=True)
class ContainerRecord:
    """What the labels of an application container say about it."""

    id: str
    sandbox_id: str
    metadata: cri.ContainerMetadata
    labels: dict[str, str]
    annotations: dict[str, str]
    created_at: int
    log_path: str
    image: str
    mounts: list[dict[str, Any]]
    user: dict[str, Any]

    def mount_messages(self) -> list[cri.Mount]:
        return [
            cri.Mount(
                container_path=m.get("container_path", ""),
                host_path=m.get("host_path", ""),
                readonly=bool(m.get("readonly")),
                selinux_relabel=bool(m.get("selinux_relabel")),
                propagation=str(m.get("propagation", "PROPAGATION_PRIVATE")),
            )
            for m in self.mounts
        ]


def parse_container(container_id: str, labels: dict[str, str]) -> ContainerRecord:
    md = _load(labels, METADATA, {})
    return ContainerRecord(
        id=container_id,
        sandbox_id=labels.get(SANDBOX_ID, ""),
        metadata=cri.ContainerMetadata(name=md.get("name", ""), attempt=int(md.get("attempt", 0))),
        labels=_load(labels, LABELS, {}),
        annotations=_load(labels, ANNOTATIONS, {}),
        created_at=int(labels.get(CREATED_AT, "0") or 0),
        log_path=labels.get(LOG_PATH, ""),
        image=labels.get(IMAGE, ""),
        mounts=_load(labels, MOUNTS, []),
        user=_load(labels, USER, {}),
    )


def selector_filters(node: str, kind: str, selector: dict[str, str] | None = None) -> list[str]:
    """Docker `label` filters: this node's objects of one kind, plus exact-match user labels."""
    filters = [f"{TYPE}={kind}", f"{NODE}={node}"]
    for key, value in sorted((selector or {}).items()):
        filters.append(f"{key}={value}")
    return filters


def sandbox_container_name(md: cri.PodSandboxMetadata) -> str:
    return f"k8s_POD_{md.name}_{md.namespace}_{md.uid}_{md.attempt}"


def container_name(md: cri.ContainerMetadata, sandbox: cri.PodSandboxMetadata | None) -> str:
    if sandbox is None or not sandbox.name:
        return f"k8s_{md.name}_{md.attempt}"
    return f"k8s_{md.name}_{sandbox.name}_{sandbox.namespace}_{sandbox.uid}_{md.attempt}"
