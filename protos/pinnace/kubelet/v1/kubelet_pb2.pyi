import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PodRef(_message.Message):
    __slots__ = ("namespace", "name", "uid")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    uid: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., uid: _Optional[str] = ...) -> None: ...

class ContainerLogsRequest(_message.Message):
    __slots__ = ("pod", "container", "follow", "previous", "timestamps", "tail_lines", "since_seconds", "limit_bytes")
    POD_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    TAIL_LINES_FIELD_NUMBER: _ClassVar[int]
    SINCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    pod: PodRef
    container: str
    follow: bool
    previous: bool
    timestamps: bool
    tail_lines: int
    since_seconds: int
    limit_bytes: int
    def __init__(self, pod: _Optional[_Union[PodRef, _Mapping]] = ..., container: _Optional[str] = ..., follow: _Optional[bool] = ..., previous: _Optional[bool] = ..., timestamps: _Optional[bool] = ..., tail_lines: _Optional[int] = ..., since_seconds: _Optional[int] = ..., limit_bytes: _Optional[int] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ExecStart(_message.Message):
    __slots__ = ("pod", "container", "command", "stdin", "stdout", "stderr", "tty")
    POD_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    TTY_FIELD_NUMBER: _ClassVar[int]
    pod: PodRef
    container: str
    command: _containers.RepeatedScalarFieldContainer[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    def __init__(self, pod: _Optional[_Union[PodRef, _Mapping]] = ..., container: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., stdin: _Optional[bool] = ..., stdout: _Optional[bool] = ..., stderr: _Optional[bool] = ..., tty: _Optional[bool] = ...) -> None: ...

class TerminalSize(_message.Message):
    __slots__ = ("width", "height")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class ExecInput(_message.Message):
    __slots__ = ("start", "stdin", "stdin_eof", "resize")
    START_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    STDIN_EOF_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    start: ExecStart
    stdin: bytes
    stdin_eof: bool
    resize: TerminalSize
    def __init__(self, start: _Optional[_Union[ExecStart, _Mapping]] = ..., stdin: _Optional[bytes] = ..., stdin_eof: _Optional[bool] = ..., resize: _Optional[_Union[TerminalSize, _Mapping]] = ...) -> None: ...

class ExecOutput(_message.Message):
    __slots__ = ("stdout", "stderr", "exit_code", "error")
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    stdout: bytes
    stderr: bytes
    exit_code: int
    error: str
    def __init__(self, stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class PortForwardStart(_message.Message):
    __slots__ = ("pod", "port")
    POD_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    pod: PodRef
    port: int
    def __init__(self, pod: _Optional[_Union[PodRef, _Mapping]] = ..., port: _Optional[int] = ...) -> None: ...

class PortForwardInput(_message.Message):
    __slots__ = ("start", "data")
    START_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    start: PortForwardStart
    data: bytes
    def __init__(self, start: _Optional[_Union[PortForwardStart, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class PortForwardOutput(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class StatsSummaryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CPUStats(_message.Message):
    __slots__ = ("time", "usage_nano_cores", "usage_core_nano_seconds")
    TIME_FIELD_NUMBER: _ClassVar[int]
    USAGE_NANO_CORES_FIELD_NUMBER: _ClassVar[int]
    USAGE_CORE_NANO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    usage_nano_cores: int
    usage_core_nano_seconds: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., usage_nano_cores: _Optional[int] = ..., usage_core_nano_seconds: _Optional[int] = ...) -> None: ...

class MemoryStats(_message.Message):
    __slots__ = ("time", "available_bytes", "usage_bytes", "working_set_bytes", "rss_bytes")
    TIME_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    USAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    WORKING_SET_BYTES_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    available_bytes: int
    usage_bytes: int
    working_set_bytes: int
    rss_bytes: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., available_bytes: _Optional[int] = ..., usage_bytes: _Optional[int] = ..., working_set_bytes: _Optional[int] = ..., rss_bytes: _Optional[int] = ...) -> None: ...

class FsStats(_message.Message):
    __slots__ = ("time", "available_bytes", "capacity_bytes", "used_bytes")
    TIME_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    available_bytes: int
    capacity_bytes: int
    used_bytes: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., available_bytes: _Optional[int] = ..., capacity_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ...) -> None: ...

class NetworkStats(_message.Message):
    __slots__ = ("time", "name", "rx_bytes", "tx_bytes")
    TIME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TX_BYTES_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    name: str
    rx_bytes: int
    tx_bytes: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[str] = ..., rx_bytes: _Optional[int] = ..., tx_bytes: _Optional[int] = ...) -> None: ...

class NodeStats(_message.Message):
    __slots__ = ("node_name", "start_time", "cpu", "memory", "fs", "runtime_image_fs")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    FS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_IMAGE_FS_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    start_time: _timestamp_pb2.Timestamp
    cpu: CPUStats
    memory: MemoryStats
    fs: FsStats
    runtime_image_fs: FsStats
    def __init__(self, node_name: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cpu: _Optional[_Union[CPUStats, _Mapping]] = ..., memory: _Optional[_Union[MemoryStats, _Mapping]] = ..., fs: _Optional[_Union[FsStats, _Mapping]] = ..., runtime_image_fs: _Optional[_Union[FsStats, _Mapping]] = ...) -> None: ...

class ContainerStats(_message.Message):
    __slots__ = ("name", "start_time", "cpu", "memory", "rootfs")
    NAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    ROOTFS_FIELD_NUMBER: _ClassVar[int]
    name: str
    start_time: _timestamp_pb2.Timestamp
    cpu: CPUStats
    memory: MemoryStats
    rootfs: FsStats
    def __init__(self, name: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cpu: _Optional[_Union[CPUStats, _Mapping]] = ..., memory: _Optional[_Union[MemoryStats, _Mapping]] = ..., rootfs: _Optional[_Union[FsStats, _Mapping]] = ...) -> None: ...

class PodStats(_message.Message):
    __slots__ = ("pod_ref", "start_time", "containers", "cpu", "memory", "network", "process_count")
    POD_REF_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    PROCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    pod_ref: PodRef
    start_time: _timestamp_pb2.Timestamp
    containers: _containers.RepeatedCompositeFieldContainer[ContainerStats]
    cpu: CPUStats
    memory: MemoryStats
    network: NetworkStats
    process_count: int
    def __init__(self, pod_ref: _Optional[_Union[PodRef, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., containers: _Optional[_Iterable[_Union[ContainerStats, _Mapping]]] = ..., cpu: _Optional[_Union[CPUStats, _Mapping]] = ..., memory: _Optional[_Union[MemoryStats, _Mapping]] = ..., network: _Optional[_Union[NetworkStats, _Mapping]] = ..., process_count: _Optional[int] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("node", "pods")
    NODE_FIELD_NUMBER: _ClassVar[int]
    PODS_FIELD_NUMBER: _ClassVar[int]
    node: NodeStats
    pods: _containers.RepeatedCompositeFieldContainer[PodStats]
    def __init__(self, node: _Optional[_Union[NodeStats, _Mapping]] = ..., pods: _Optional[_Iterable[_Union[PodStats, _Mapping]]] = ...) -> None: ...
