"""Wire compatibility with Kubernetes' runtime.v1: an independent schema, transcribed from
Kubernetes' cri-api field tables (name, number, type) and built into a descriptor here
without our .proto, must decode what our generated classes encode and vice versa; and every
field number and type of our descriptors must match the table."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from pinnace.cri.v1 import api_pb2 as cri

F = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "string": F.TYPE_STRING,
    "bytes": F.TYPE_BYTES,
    "bool": F.TYPE_BOOL,
    "int32": F.TYPE_INT32,
    "int64": F.TYPE_INT64,
    "uint32": F.TYPE_UINT32,
    "uint64": F.TYPE_UINT64,
}
ENUMS = {
    "Protocol": ["TCP", "UDP", "SCTP"],
    "NamespaceMode": ["POD", "CONTAINER", "NODE", "TARGET"],
    "PodSandboxState": ["SANDBOX_READY", "SANDBOX_NOTREADY"],
    "ContainerState": ["CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED", "CONTAINER_UNKNOWN"],
    "MountPropagation": ["PROPAGATION_PRIVATE", "PROPAGATION_HOST_TO_CONTAINER", "PROPAGATION_BIDIRECTIONAL"],
}
# message -> [(field, number, type, repeated)]; "map" means map<string, string>.
K8S: dict[str, list[tuple[str, int, str, bool]]] = {
    "VersionResponse": [("version", 1, "string", False), ("runtime_name", 2, "string", False),
                        ("runtime_version", 3, "string", False), ("runtime_api_version", 4, "string", False)],
    "PodSandboxMetadata": [("name", 1, "string", False), ("uid", 2, "string", False),
                           ("namespace", 3, "string", False), ("attempt", 4, "uint32", False)],
    "DNSConfig": [("servers", 1, "string", True), ("searches", 2, "string", True), ("options", 3, "string", True)],
    "PortMapping": [("protocol", 1, "Protocol", False), ("container_port", 2, "int32", False),
                    ("host_port", 3, "int32", False), ("host_ip", 4, "string", False)],
    "NamespaceOption": [("network", 1, "NamespaceMode", False), ("pid", 2, "NamespaceMode", False),
                        ("ipc", 3, "NamespaceMode", False), ("target_id", 4, "string", False)],
    "Int64Value": [("value", 1, "int64", False)],
    "LinuxSandboxSecurityContext": [("namespace_options", 1, "NamespaceOption", False),
                                    ("run_as_user", 3, "Int64Value", False), ("readonly_rootfs", 4, "bool", False),
                                    ("supplemental_groups", 5, "int64", True), ("privileged", 6, "bool", False),
                                    ("run_as_group", 8, "Int64Value", False)],
    "LinuxPodSandboxConfig": [("cgroup_parent", 1, "string", False),
                              ("security_context", 2, "LinuxSandboxSecurityContext", False),
                              ("sysctls", 3, "map", False)],
    "PodSandboxConfig": [("metadata", 1, "PodSandboxMetadata", False), ("hostname", 2, "string", False),
                         ("log_directory", 3, "string", False), ("dns_config", 4, "DNSConfig", False),
                         ("port_mappings", 5, "PortMapping", True), ("labels", 6, "map", False),
                         ("annotations", 7, "map", False), ("linux", 8, "LinuxPodSandboxConfig", False)],
    "RunPodSandboxRequest": [("config", 1, "PodSandboxConfig", False), ("runtime_handler", 2, "string", False)],
    "ContainerMetadata": [("name", 1, "string", False), ("attempt", 2, "uint32", False)],
    "ImageSpec": [("image", 1, "string", False), ("annotations", 2, "map", False),
                  ("user_specified_image", 18, "string", False), ("runtime_handler", 19, "string", False),
                  ("image_ref", 20, "string", False)],
    "KeyValue": [("key", 1, "string", False), ("value", 2, "bytes", False)],
    "Mount": [("container_path", 1, "string", False), ("host_path", 2, "string", False),
              ("readonly", 3, "bool", False), ("selinux_relabel", 4, "bool", False),
              ("propagation", 5, "MountPropagation", False), ("recursive_read_only", 8, "bool", False),
              ("image_sub_path", 10, "string", False)],
    "LinuxContainerResources": [("cpu_period", 1, "int64", False), ("cpu_quota", 2, "int64", False),
                                ("cpu_shares", 3, "int64", False), ("memory_limit_in_bytes", 4, "int64", False),
                                ("oom_score_adj", 5, "int64", False), ("cpuset_cpus", 6, "string", False),
                                ("cpuset_mems", 7, "string", False), ("unified", 9, "map", False),
                                ("memory_swap_limit_in_bytes", 10, "int64", False)],
    "Capability": [("add_capabilities", 1, "string", True), ("drop_capabilities", 2, "string", True),
                   ("add_ambient_capabilities", 3, "string", True)],
    "LinuxContainerSecurityContext": [("capabilities", 1, "Capability", False), ("privileged", 2, "bool", False),
                                      ("namespace_options", 3, "NamespaceOption", False),
                                      ("run_as_user", 5, "Int64Value", False), ("run_as_username", 6, "string", False),
                                      ("readonly_rootfs", 7, "bool", False), ("supplemental_groups", 8, "int64", True),
                                      ("no_new_privs", 11, "bool", False), ("run_as_group", 12, "Int64Value", False),
                                      ("masked_paths", 13, "string", True), ("readonly_paths", 14, "string", True)],
    "LinuxContainerConfig": [("resources", 1, "LinuxContainerResources", False),
                             ("security_context", 2, "LinuxContainerSecurityContext", False)],
    "ContainerConfig": [("metadata", 1, "ContainerMetadata", False), ("image", 2, "ImageSpec", False),
                        ("command", 3, "string", True), ("args", 4, "string", True),
                        ("working_dir", 5, "string", False), ("envs", 6, "KeyValue", True),
                        ("mounts", 7, "Mount", True), ("labels", 9, "map", False), ("annotations", 10, "map", False),
                        ("log_path", 11, "string", False), ("stdin", 12, "bool", False),
                        ("stdin_once", 13, "bool", False), ("tty", 14, "bool", False),
                        ("linux", 15, "LinuxContainerConfig", False)],
    "CreateContainerRequest": [("pod_sandbox_id", 1, "string", False), ("config", 2, "ContainerConfig", False),
                               ("sandbox_config", 3, "PodSandboxConfig", False)],
    "PodIP": [("ip", 1, "string", False)],
    "PodSandboxNetworkStatus": [("ip", 1, "string", False), ("additional_ips", 2, "PodIP", True)],
    "PodSandboxStatus": [("id", 1, "string", False), ("metadata", 2, "PodSandboxMetadata", False),
                         ("state", 3, "PodSandboxState", False), ("created_at", 4, "int64", False),
                         ("network", 5, "PodSandboxNetworkStatus", False), ("labels", 7, "map", False),
                         ("annotations", 8, "map", False), ("runtime_handler", 9, "string", False)],
    "ContainerStatus": [("id", 1, "string", False), ("metadata", 2, "ContainerMetadata", False),
                        ("state", 3, "ContainerState", False), ("created_at", 4, "int64", False),
                        ("started_at", 5, "int64", False), ("finished_at", 6, "int64", False),
                        ("exit_code", 7, "int32", False), ("image", 8, "ImageSpec", False),
                        ("image_ref", 9, "string", False), ("reason", 10, "string", False),
                        ("message", 11, "string", False), ("labels", 12, "map", False),
                        ("annotations", 13, "map", False), ("mounts", 14, "Mount", True),
                        ("log_path", 15, "string", False), ("image_id", 17, "string", False)],
    "ExecSyncRequest": [("container_id", 1, "string", False), ("cmd", 2, "string", True), ("timeout", 3, "int64", False)],
    "ExecSyncResponse": [("stdout", 1, "bytes", False), ("stderr", 2, "bytes", False), ("exit_code", 3, "int32", False)],
    "StopContainerRequest": [("container_id", 1, "string", False), ("timeout", 2, "int64", False)],
    "AuthConfig": [("username", 1, "string", False), ("password", 2, "string", False), ("auth", 3, "string", False),
                   ("server_address", 4, "string", False), ("identity_token", 5, "string", False),
                   ("registry_token", 6, "string", False)],
    "PullImageRequest": [("image", 1, "ImageSpec", False), ("auth", 2, "AuthConfig", False),
                         ("sandbox_config", 3, "PodSandboxConfig", False)],
    "UInt64Value": [("value", 1, "uint64", False)],
    "Image": [("id", 1, "string", False), ("repo_tags", 2, "string", True), ("repo_digests", 3, "string", True),
              ("size", 4, "uint64", False), ("uid", 5, "Int64Value", False), ("username", 6, "string", False),
              ("spec", 7, "ImageSpec", False), ("pinned", 8, "bool", False)],
}  # fmt: skip


def _k8s_pool() -> descriptor_pool.DescriptorPool:
    fd = descriptor_pb2.FileDescriptorProto(
        name="k8s_cri_subset.proto", package="k8s.runtime.v1", syntax="proto3"
    )
    for name, values in ENUMS.items():
        enum = fd.enum_type.add(name=name)
        for number, value in enumerate(values):
            enum.value.add(name=f"{name.upper()}_{value}", number=number)
    for name, fields in K8S.items():
        msg = fd.message_type.add(name=name)
        for field_name, number, kind, repeated in fields:
            label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
            if kind == "map":
                entry = msg.nested_type.add(name="".join(p.title() for p in field_name.split("_")) + "Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
                entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
                msg.field.add(name=field_name, number=number, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                              type_name=f".k8s.runtime.v1.{name}.{entry.name}")  # fmt: skip
            elif kind in SCALARS:
                msg.field.add(name=field_name, number=number, type=SCALARS[kind], label=label)
            elif kind in ENUMS:
                msg.field.add(name=field_name, number=number, type=F.TYPE_ENUM, label=label,
                              type_name=f".k8s.runtime.v1.{kind}")  # fmt: skip
            else:
                msg.field.add(name=field_name, number=number, type=F.TYPE_MESSAGE, label=label,
                              type_name=f".k8s.runtime.v1.{kind}")  # fmt: skip
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return pool


POOL = _k8s_pool()


def k8s(name: str) -> Any:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"k8s.runtime.v1.{name}"))


@pytest.mark.parametrize("name", sorted(K8S))
def test_field_numbers_and_types_match_kubernetes(name: str) -> None:
    ours = getattr(cri, name).DESCRIPTOR
    theirs = POOL.FindMessageTypeByName(f"k8s.runtime.v1.{name}")
    for field in theirs.fields:
        mine = ours.fields_by_name.get(field.name)
        assert mine is not None, f"{name}.{field.name} is missing"
        assert mine.number == field.number, f"{name}.{field.name}: number {mine.number} != {field.number}"
        assert mine.type == field.type, f"{name}.{field.name}: type {mine.type} != {field.type}"
        assert mine.is_repeated == field.is_repeated, f"{name}.{field.name}"


def _sample_create_request() -> cri.CreateContainerRequest:
    pod = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name="web", uid="u-1", namespace="default", attempt=2),
        hostname="web",
        log_directory="/var/log/pods/default_web_u-1",
        dns_config=cri.DNSConfig(servers=["10.96.0.10"], searches=["svc.cluster.local"], options=["ndots:5"]),
        port_mappings=[
            cri.PortMapping(protocol=cri.UDP, container_port=53, host_port=5353, host_ip="127.0.0.1")
        ],
        labels={"app": "web"},
        annotations={"note": "ünïcode"},
        linux=cri.LinuxPodSandboxConfig(
            cgroup_parent="/kubepods",
            sysctls={"net.ipv4.ip_forward": "1"},
            security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=cri.NamespaceOption(network=cri.NODE, pid=cri.CONTAINER), privileged=True
            ),
        ),
    )
    container = cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name="app", attempt=1),
        image=cri.ImageSpec(image="busybox:1", user_specified_image="busybox:1"),
        command=["sh"],
        args=["-c", "true"],
        working_dir="/w",
        envs=[cri.KeyValue(key="A", value=b"\xff\x00binary")],
        mounts=[
            cri.Mount(
                container_path="/d", host_path="/h", readonly=True, propagation=cri.PROPAGATION_BIDIRECTIONAL
            )
        ],
        labels={"l": "v"},
        log_path="app/1.log",
        tty=True,
        linux=cri.LinuxContainerConfig(
            resources=cri.LinuxContainerResources(
                cpu_shares=512, memory_limit_in_bytes=1 << 26, oom_score_adj=-5
            ),
            security_context=cri.LinuxContainerSecurityContext(
                capabilities=cri.Capability(add_capabilities=["NET_ADMIN"]),
                run_as_user=cri.Int64Value(value=1000),
                no_new_privs=True,
                masked_paths=["/proc/kcore"],
            ),
        ),
    )
    return cri.CreateContainerRequest(pod_sandbox_id="abc", config=container, sandbox_config=pod)


def test_kubernetes_decodes_what_we_encode_and_back() -> None:
    ours = _sample_create_request()
    theirs = k8s("CreateContainerRequest").FromString(ours.SerializeToString())
    assert theirs.sandbox_config.metadata.attempt == 2
    assert theirs.sandbox_config.port_mappings[0].protocol == 1
    assert theirs.sandbox_config.linux.security_context.namespace_options.network == 2
    assert dict(theirs.sandbox_config.linux.sysctls) == {"net.ipv4.ip_forward": "1"}
    assert theirs.config.envs[0].value == b"\xff\x00binary"
    assert theirs.config.mounts[0].propagation == 2
    assert theirs.config.linux.resources.oom_score_adj == -5
    assert theirs.config.linux.security_context.run_as_user.value == 1000
    back = cri.CreateContainerRequest.FromString(theirs.SerializeToString())
    assert back == ours


def test_responses_decode_in_kubernetes_schema() -> None:
    status = cri.ContainerStatus(
        id="c", state=cri.CONTAINER_EXITED, created_at=1, started_at=2, finished_at=3, exit_code=137,
        reason="OOMKilled", image=cri.ImageSpec(image="i"), image_ref="sha256:x", labels={"a": "b"},
        mounts=[cri.Mount(container_path="/x", host_path="/y")], log_path="/l", image_id="sha256:x",
    )  # fmt: skip
    theirs = k8s("ContainerStatus").FromString(status.SerializeToString())
    assert (theirs.state, theirs.exit_code, theirs.reason, theirs.finished_at) == (2, 137, "OOMKilled", 3)
    out = cri.ExecSyncResponse(stdout=b"\x00\x01", stderr=b"e", exit_code=-1)
    decoded = k8s("ExecSyncResponse").FromString(out.SerializeToString())
    assert (decoded.stdout, decoded.exit_code) == (b"\x00\x01", -1)


def test_service_has_every_kubernetes_rpc() -> None:
    runtime = {m.name for m in cri.DESCRIPTOR.services_by_name["RuntimeService"].methods}
    images = {m.name for m in cri.DESCRIPTOR.services_by_name["ImageService"].methods}
    assert cri.DESCRIPTOR.package == "runtime.v1"
    assert {"Version", "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus", "ListPodSandbox",
            "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer", "ListContainers",
            "ContainerStatus", "UpdateContainerResources", "ReopenContainerLog", "ExecSync", "Exec", "Attach",
            "PortForward", "ContainerStats", "ListContainerStats", "PodSandboxStats", "ListPodSandboxStats",
            "UpdateRuntimeConfig", "Status", "CheckpointContainer", "GetContainerEvents", "ListMetricDescriptors",
            "ListPodSandboxMetrics", "RuntimeConfig", "UpdatePodSandboxResources", "StreamPodSandboxes",
            "StreamContainers", "StreamContainerStats", "StreamPodSandboxStats", "StreamPodSandboxMetrics",
            "CheckpointPod", "RestorePod"} == runtime  # fmt: skip
    assert images == {"ListImages", "StreamImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"}
