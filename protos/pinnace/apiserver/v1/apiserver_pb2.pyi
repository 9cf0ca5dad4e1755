from pinnace.api.apps.v1 import apps_pb2 as _apps_pb2
from pinnace.api.authentication.v1 import authentication_pb2 as _authentication_pb2
from pinnace.api.authorization.v1 import authorization_pb2 as _authorization_pb2
from pinnace.api.autoscaling.v1 import autoscaling_pb2 as _autoscaling_pb2
from pinnace.api.batch.v1 import batch_pb2 as _batch_pb2
from pinnace.api.certificates.v1 import certificates_pb2 as _certificates_pb2
from pinnace.api.coordination.v1 import coordination_pb2 as _coordination_pb2
from pinnace.api.core.v1 import core_pb2 as _core_pb2
from pinnace.api.meta.v1 import meta_pb2 as _meta_pb2
from pinnace.api.networking.v1 import networking_pb2 as _networking_pb2
from pinnace.api.policy.v1 import policy_pb2 as _policy_pb2
from pinnace.api.rbac.v1 import rbac_pb2 as _rbac_pb2
from pinnace.api.scheduling.v1 import scheduling_pb2 as _scheduling_pb2
from pinnace.api.storage.v1 import storage_pb2 as _storage_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Object(_message.Message):
    __slots__ = ("namespace", "node", "pod", "service", "endpoints", "replication_controller", "secret", "config_map", "service_account", "resource_quota", "limit_range", "persistent_volume", "persistent_volume_claim", "event", "replica_set", "deployment", "daemon_set", "stateful_set", "controller_revision", "job", "cron_job", "horizontal_pod_autoscaler", "lease", "priority_class", "role", "cluster_role", "role_binding", "cluster_role_binding", "ingress", "pod_disruption_budget", "storage_class", "certificate_signing_request", "subject_access_review")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CONFIG_MAP_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_QUOTA_FIELD_NUMBER: _ClassVar[int]
    LIMIT_RANGE_FIELD_NUMBER: _ClassVar[int]
    PERSISTENT_VOLUME_FIELD_NUMBER: _ClassVar[int]
    PERSISTENT_VOLUME_CLAIM_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REPLICA_SET_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    DAEMON_SET_FIELD_NUMBER: _ClassVar[int]
    STATEFUL_SET_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_REVISION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    CRON_JOB_FIELD_NUMBER: _ClassVar[int]
    HORIZONTAL_POD_AUTOSCALER_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_CLASS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ROLE_FIELD_NUMBER: _ClassVar[int]
    ROLE_BINDING_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ROLE_BINDING_FIELD_NUMBER: _ClassVar[int]
    INGRESS_FIELD_NUMBER: _ClassVar[int]
    POD_DISRUPTION_BUDGET_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_SIGNING_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ACCESS_REVIEW_FIELD_NUMBER: _ClassVar[int]
    namespace: _core_pb2.Namespace
    node: _core_pb2.Node
    pod: _core_pb2.Pod
    service: _core_pb2.Service
    endpoints: _core_pb2.Endpoints
    replication_controller: _core_pb2.ReplicationController
    secret: _core_pb2.Secret
    config_map: _core_pb2.ConfigMap
    service_account: _core_pb2.ServiceAccount
    resource_quota: _core_pb2.ResourceQuota
    limit_range: _core_pb2.LimitRange
    persistent_volume: _core_pb2.PersistentVolume
    persistent_volume_claim: _core_pb2.PersistentVolumeClaim
    event: _core_pb2.Event
    replica_set: _apps_pb2.ReplicaSet
    deployment: _apps_pb2.Deployment
    daemon_set: _apps_pb2.DaemonSet
    stateful_set: _apps_pb2.StatefulSet
    controller_revision: _apps_pb2.ControllerRevision
    job: _batch_pb2.Job
    cron_job: _batch_pb2.CronJob
    horizontal_pod_autoscaler: _autoscaling_pb2.HorizontalPodAutoscaler
    lease: _coordination_pb2.Lease
    priority_class: _scheduling_pb2.PriorityClass
    role: _rbac_pb2.Role
    cluster_role: _rbac_pb2.ClusterRole
    role_binding: _rbac_pb2.RoleBinding
    cluster_role_binding: _rbac_pb2.ClusterRoleBinding
    ingress: _networking_pb2.Ingress
    pod_disruption_budget: _policy_pb2.PodDisruptionBudget
    storage_class: _storage_pb2.StorageClass
    certificate_signing_request: _certificates_pb2.CertificateSigningRequest
    subject_access_review: _authorization_pb2.SubjectAccessReview
    def __init__(self, namespace: _Optional[_Union[_core_pb2.Namespace, _Mapping]] = ..., node: _Optional[_Union[_core_pb2.Node, _Mapping]] = ..., pod: _Optional[_Union[_core_pb2.Pod, _Mapping]] = ..., service: _Optional[_Union[_core_pb2.Service, _Mapping]] = ..., endpoints: _Optional[_Union[_core_pb2.Endpoints, _Mapping]] = ..., replication_controller: _Optional[_Union[_core_pb2.ReplicationController, _Mapping]] = ..., secret: _Optional[_Union[_core_pb2.Secret, _Mapping]] = ..., config_map: _Optional[_Union[_core_pb2.ConfigMap, _Mapping]] = ..., service_account: _Optional[_Union[_core_pb2.ServiceAccount, _Mapping]] = ..., resource_quota: _Optional[_Union[_core_pb2.ResourceQuota, _Mapping]] = ..., limit_range: _Optional[_Union[_core_pb2.LimitRange, _Mapping]] = ..., persistent_volume: _Optional[_Union[_core_pb2.PersistentVolume, _Mapping]] = ..., persistent_volume_claim: _Optional[_Union[_core_pb2.PersistentVolumeClaim, _Mapping]] = ..., event: _Optional[_Union[_core_pb2.Event, _Mapping]] = ..., replica_set: _Optional[_Union[_apps_pb2.ReplicaSet, _Mapping]] = ..., deployment: _Optional[_Union[_apps_pb2.Deployment, _Mapping]] = ..., daemon_set: _Optional[_Union[_apps_pb2.DaemonSet, _Mapping]] = ..., stateful_set: _Optional[_Union[_apps_pb2.StatefulSet, _Mapping]] = ..., controller_revision: _Optional[_Union[_apps_pb2.ControllerRevision, _Mapping]] = ..., job: _Optional[_Union[_batch_pb2.Job, _Mapping]] = ..., cron_job: _Optional[_Union[_batch_pb2.CronJob, _Mapping]] = ..., horizontal_pod_autoscaler: _Optional[_Union[_autoscaling_pb2.HorizontalPodAutoscaler, _Mapping]] = ..., lease: _Optional[_Union[_coordination_pb2.Lease, _Mapping]] = ..., priority_class: _Optional[_Union[_scheduling_pb2.PriorityClass, _Mapping]] = ..., role: _Optional[_Union[_rbac_pb2.Role, _Mapping]] = ..., cluster_role: _Optional[_Union[_rbac_pb2.ClusterRole, _Mapping]] = ..., role_binding: _Optional[_Union[_rbac_pb2.RoleBinding, _Mapping]] = ..., cluster_role_binding: _Optional[_Union[_rbac_pb2.ClusterRoleBinding, _Mapping]] = ..., ingress: _Optional[_Union[_networking_pb2.Ingress, _Mapping]] = ..., pod_disruption_budget: _Optional[_Union[_policy_pb2.PodDisruptionBudget, _Mapping]] = ..., storage_class: _Optional[_Union[_storage_pb2.StorageClass, _Mapping]] = ..., certificate_signing_request: _Optional[_Union[_certificates_pb2.CertificateSigningRequest, _Mapping]] = ..., subject_access_review: _Optional[_Union[_authorization_pb2.SubjectAccessReview, _Mapping]] = ...) -> None: ...

class CreateRequest(_message.Message):
    __slots__ = ("object", "dry_run")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    object: Object
    dry_run: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, object: _Optional[_Union[Object, _Mapping]] = ..., dry_run: _Optional[_Iterable[str]] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("resource", "namespace", "name")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    resource: str
    namespace: str
    name: str
    def __init__(self, resource: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("resource", "namespace", "label_selector", "field_selector", "limit", "continue_token", "resource_version", "resource_version_match")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    FIELD_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONTINUE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_VERSION_MATCH_FIELD_NUMBER: _ClassVar[int]
    resource: str
    namespace: str
    label_selector: str
    field_selector: str
    limit: int
    continue_token: str
    resource_version: str
    resource_version_match: str
    def __init__(self, resource: _Optional[str] = ..., namespace: _Optional[str] = ..., label_selector: _Optional[str] = ..., field_selector: _Optional[str] = ..., limit: _Optional[int] = ..., continue_token: _Optional[str] = ..., resource_version: _Optional[str] = ..., resource_version_match: _Optional[str] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("metadata", "items")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    metadata: _meta_pb2.ListMeta
    items: _containers.RepeatedCompositeFieldContainer[Object]
    def __init__(self, metadata: _Optional[_Union[_meta_pb2.ListMeta, _Mapping]] = ..., items: _Optional[_Iterable[_Union[Object, _Mapping]]] = ...) -> None: ...

class UpdateRequest(_message.Message):
    __slots__ = ("object", "dry_run")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    object: Object
    dry_run: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, object: _Optional[_Union[Object, _Mapping]] = ..., dry_run: _Optional[_Iterable[str]] = ...) -> None: ...

class PatchRequest(_message.Message):
    __slots__ = ("resource", "namespace", "name", "type", "patch", "subresource")
    class PatchType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MERGE: _ClassVar[PatchRequest.PatchType]
        STRATEGIC_MERGE: _ClassVar[PatchRequest.PatchType]
        JSON_PATCH: _ClassVar[PatchRequest.PatchType]
    MERGE: PatchRequest.PatchType
    STRATEGIC_MERGE: PatchRequest.PatchType
    JSON_PATCH: PatchRequest.PatchType
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    SUBRESOURCE_FIELD_NUMBER: _ClassVar[int]
    resource: str
    namespace: str
    name: str
    type: PatchRequest.PatchType
    patch: bytes
    subresource: str
    def __init__(self, resource: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[PatchRequest.PatchType, str]] = ..., patch: _Optional[bytes] = ..., subresource: _Optional[str] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("resource", "namespace", "name", "options")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    resource: str
    namespace: str
    name: str
    options: _meta_pb2.DeleteOptions
    def __init__(self, resource: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., options: _Optional[_Union[_meta_pb2.DeleteOptions, _Mapping]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("object", "removed")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    object: Object
    removed: bool
    def __init__(self, object: _Optional[_Union[Object, _Mapping]] = ..., removed: _Optional[bool] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("resource", "namespace", "label_selector", "field_selector", "resource_version", "allow_watch_bookmarks", "timeout_seconds")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    FIELD_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ALLOW_WATCH_BOOKMARKS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    resource: str
    namespace: str
    label_selector: str
    field_selector: str
    resource_version: str
    allow_watch_bookmarks: bool
    timeout_seconds: int
    def __init__(self, resource: _Optional[str] = ..., namespace: _Optional[str] = ..., label_selector: _Optional[str] = ..., field_selector: _Optional[str] = ..., resource_version: _Optional[str] = ..., allow_watch_bookmarks: _Optional[bool] = ..., timeout_seconds: _Optional[int] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("type", "object", "status")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    type: str
    object: Object
    status: _meta_pb2.Status
    def __init__(self, type: _Optional[str] = ..., object: _Optional[_Union[Object, _Mapping]] = ..., status: _Optional[_Union[_meta_pb2.Status, _Mapping]] = ...) -> None: ...

class WatchEventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[WatchEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[WatchEvent, _Mapping]]] = ...) -> None: ...

class PipelineCall(_message.Message):
    __slots__ = ("id", "create", "bind")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    BIND_FIELD_NUMBER: _ClassVar[int]
    id: int
    create: CreateRequest
    bind: BindRequest
    def __init__(self, id: _Optional[int] = ..., create: _Optional[_Union[CreateRequest, _Mapping]] = ..., bind: _Optional[_Union[BindRequest, _Mapping]] = ...) -> None: ...

class PipelineAnswer(_message.Message):
    __slots__ = ("id", "created", "bound", "error", "code", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: int
    created: Object
    bound: BindResponse
    error: _meta_pb2.Status
    code: int
    message: str
    def __init__(self, id: _Optional[int] = ..., created: _Optional[_Union[Object, _Mapping]] = ..., bound: _Optional[_Union[BindResponse, _Mapping]] = ..., error: _Optional[_Union[_meta_pb2.Status, _Mapping]] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class PipelineCalls(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[PipelineCall]
    def __init__(self, calls: _Optional[_Iterable[_Union[PipelineCall, _Mapping]]] = ...) -> None: ...

class PipelineAnswers(_message.Message):
    __slots__ = ("answers",)
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[PipelineAnswer]
    def __init__(self, answers: _Optional[_Iterable[_Union[PipelineAnswer, _Mapping]]] = ...) -> None: ...

class BindRequest(_message.Message):
    __slots__ = ("binding",)
    BINDING_FIELD_NUMBER: _ClassVar[int]
    binding: _core_pb2.Binding
    def __init__(self, binding: _Optional[_Union[_core_pb2.Binding, _Mapping]] = ...) -> None: ...

class BindResponse(_message.Message):
    __slots__ = ("pod",)
    POD_FIELD_NUMBER: _ClassVar[int]
    pod: _core_pb2.Pod
    def __init__(self, pod: _Optional[_Union[_core_pb2.Pod, _Mapping]] = ...) -> None: ...

class EvictRequest(_message.Message):
    __slots__ = ("eviction",)
    EVICTION_FIELD_NUMBER: _ClassVar[int]
    eviction: _policy_pb2.Eviction
    def __init__(self, eviction: _Optional[_Union[_policy_pb2.Eviction, _Mapping]] = ...) -> None: ...

class EvictResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("namespace", "name", "token_request")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REQUEST_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    token_request: _authentication_pb2.TokenRequest
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., token_request: _Optional[_Union[_authentication_pb2.TokenRequest, _Mapping]] = ...) -> None: ...

class GetScaleRequest(_message.Message):
    __slots__ = ("resource", "namespace", "name")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    resource: str
    namespace: str
    name: str
    def __init__(self, resource: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class UpdateScaleRequest(_message.Message):
    __slots__ = ("resource", "scale")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    resource: str
    scale: _autoscaling_pb2.Scale
    def __init__(self, resource: _Optional[str] = ..., scale: _Optional[_Union[_autoscaling_pb2.Scale, _Mapping]] = ...) -> None: ...

class VersionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VersionInfo(_message.Message):
    __slots__ = ("git_version", "platform", "python_version")
    GIT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    git_version: str
    platform: str
    python_version: str
    def __init__(self, git_version: _Optional[str] = ..., platform: _Optional[str] = ..., python_version: _Optional[str] = ...) -> None: ...
