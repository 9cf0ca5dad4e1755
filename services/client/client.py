"""The typed client: every API verb as an async method taking and returning the kinds'
messages (no envelopes), errors raised as services.client.errors exceptions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from pinnace.api.authentication.v1 import authentication_pb2
from pinnace.api.autoscaling.v1 import autoscaling_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from pinnace.api.policy.v1 import policy_pb2
from pinnace.apiserver.v1 import apiserver_pb2, apiserver_pb2_grpc
from services.client.errors import from_rpc_error
from services.client.pipeline import Pipeline, PipelineUnsupportedError
from services.client.streams import NodeProxyClient
from services.machinery.envelope import unwrap, wrap
from services.machinery.kinds import REGISTRY, KindInfo

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_M = TypeVar("_M", bound=Message)
Resource = str | type[Message] | KindInfo

PATCH_TYPES = {
    "merge": apiserver_pb2.PatchRequest.MERGE,
    "strategic": apiserver_pb2.PatchRequest.STRATEGIC_MERGE,
    "json": apiserver_pb2.PatchRequest.JSON_PATCH,
}


def kind_info(resource: Resource) -> KindInfo:
    if isinstance(resource, KindInfo):
        return resource
    if isinstance(resource, str):
        return REGISTRY.by_name(resource)
    return REGISTRY.by_message(resource())


def resource_name(resource: Resource) -> str:
    """What the request carries: a string as the user typed it (the server resolves short
    names and reports unknown ones), otherwise the kind's plural."""
    return resource if isinstance(resource, str) else kind_info(resource).plural


@dataclass(frozen=True)
class ListResult:
    items: list[Message]
    resource_version: str
    continue_token: str


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    obj: Message


def channel_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.enable_retries", 1),
    ]


class Client:
    def __init__(self, channel: grpc.aio.Channel, *, timeout: float = 30.0) -> None:
        self.channel = channel
        self.stub = apiserver_pb2_grpc.APIStub(channel)
        self.timeout = timeout
        # Whether the apiserver serves WatchBatches: None until a watch finds out.
        self._batched_watch: bool | None = None
        self._pipeline: Pipeline | None = None  # see use_pipeline()

    @classmethod
    def connect(cls, address: str, *, timeout: float = 30.0) -> Client:
        """A client over a plaintext channel (TLS arrives with the security issue)."""
        return cls(grpc.aio.insecure_channel(address, options=channel_options()), timeout=timeout)

    async def close(self) -> None:
        if self._pipeline is not None:
            await self._pipeline.close()
        await self.channel.close(None)

    @property
    def node_proxy(self) -> NodeProxyClient:
        """Pod logs, exec/attach sessions, port-forwarding and node stats through the
        apiserver's NodeProxy service (services/client/streams.py), on this connection."""
        return NodeProxyClient(self.channel, timeout=self.timeout)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _unary(self, method: Any, request: Message) -> Any:
        try:
            return await method(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    # ------------------------------------------------------------------ verbs

    def use_pipeline(self) -> None:
        """Send creates and bindings on one Pipeline stream (services/client/pipeline.py):
        for a client that makes many at once, such as the scheduler."""
        if self._pipeline is None:
            self._pipeline = Pipeline(self.stub, self.timeout)

    async def _pipelined(self, call: apiserver_pb2.PipelineCall) -> apiserver_pb2.PipelineAnswer | None:
        """The answer through the pipeline, or None: no pipeline, or the apiserver lacks it."""
        if self._pipeline is None or self._pipeline.supported is False:
            return None
        try:
            return await self._pipeline.call(call)
        except PipelineUnsupportedError:
            return None

    async def create(self, obj: _M, *, dry_run: bool = False) -> _M:
        request = apiserver_pb2.CreateRequest(object=wrap(obj), dry_run=["All"] if dry_run else [])
        answer = await self._pipelined(apiserver_pb2.PipelineCall(create=request))
        if answer is not None:
            return unwrap(answer.created)  # type: ignore[return-value]
        created: _M = unwrap(await self._unary(self.stub.Create, request))  # type: ignore[assignment]
        return created

    async def get(self, resource: Resource, name: str, namespace: str = "") -> Message:
        request = apiserver_pb2.GetRequest(resource=resource_name(resource), namespace=namespace, name=name)
        return unwrap(await self._unary(self.stub.Get, request))

    async def list(
        self,
        resource: Resource,
        namespace: str = "",
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ListResult:
        request = apiserver_pb2.ListRequest(
            resource=resource_name(resource),
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_token=continue_token,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
        )
        response = await self._unary(self.stub.List, request)
        return ListResult(
            [unwrap(o) for o in response.items],
            response.metadata.resource_version,
            response.metadata.continue_token,
        )

    async def list_all(
        self, resource: Resource, namespace: str = "", *, page_size: int = 500, **selectors: str
    ) -> ListResult:
        """Every item, fetched in pages of page_size at one consistent revision."""
        items: list[Message] = []
        token = ""
        while True:
            page = await self.list(resource, namespace, limit=page_size, continue_token=token, **selectors)
            items.extend(page.items)
            token = page.continue_token
            if not token:
                return ListResult(items, page.resource_version, "")

    async def update(self, obj: _M, *, dry_run: bool = False) -> _M:
        request = apiserver_pb2.UpdateRequest(object=wrap(obj), dry_run=["All"] if dry_run else [])
        updated: _M = unwrap(await self._unary(self.stub.Update, request))  # type: ignore[assignment]
        return updated

    async def update_status(self, obj: _M) -> _M:
        request = apiserver_pb2.UpdateRequest(object=wrap(obj))
        updated: _M = unwrap(await self._unary(self.stub.UpdateStatus, request))  # type: ignore[assignment]
        return updated

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        namespace: str = "",
        *,
        patch_type: str = "strategic",
        subresource: str = "",
    ) -> Message:
        body = patch if isinstance(patch, (bytes, str)) else json.dumps(patch)
        request = apiserver_pb2.PatchRequest(
            resource=resource_name(resource),
            namespace=namespace,
            name=name,
            type=PATCH_TYPES[patch_type],
            patch=body.encode() if isinstance(body, str) else body,
            subresource=subresource,
        )
        return unwrap(await self._unary(self.stub.Patch, request))

    async def delete(
        self,
        resource: Resource,
        name: str,
        namespace: str = "",
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str = "",
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> tuple[Message, bool]:
        options = meta_pb2.DeleteOptions(propagation_policy=propagation_policy)
        if grace_period_seconds is not None:
            options.grace_period_seconds = grace_period_seconds
        if uid is not None:
            options.preconditions.uid = uid
        if resource_version is not None:
            options.preconditions.resource_version = resource_version
        request = apiserver_pb2.DeleteRequest(
            resource=resource_name(resource), namespace=namespace, name=name, options=options
        )
        response = await self._unary(self.stub.Delete, request)
        return unwrap(response.object), response.removed

    async def watch(
        self,
        resource: Resource,
        namespace: str = "",
        *,
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        bookmarks: bool = False,
        timeout_seconds: int = 0,
    ) -> AsyncIterator[WatchEvent]:
        request = apiserver_pb2.WatchRequest(
            resource=resource_name(resource),
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            allow_watch_bookmarks=bookmarks,
            timeout_seconds=timeout_seconds,
        )
        if self._batched_watch is not False:
            batches = self.stub.WatchBatches(request)
            try:
                async for batch in batches:
                    self._batched_watch = True
                    for event in batch.events:
                        yield WatchEvent(event.type, unwrap(event.object))
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.UNIMPLEMENTED or self._batched_watch:
                    raise from_rpc_error(exc) from None
                self._batched_watch = False  # an apiserver from before WatchBatches
            finally:
                batches.cancel()
        call = self.stub.Watch(request)
        try:
            async for event in call:
                yield WatchEvent(event.type, unwrap(event.object))
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def version(self) -> apiserver_pb2.VersionInfo:
        """The server's version (public: no authorization needed)."""
        info: apiserver_pb2.VersionInfo = await self._unary(self.stub.Version, apiserver_pb2.VersionRequest())
        return info

    async def bind(self, pod_name: str, namespace: str, node_name: str, uid: str = "") -> core_pb2.Pod:
        binding = core_pb2.Binding()
        binding.metadata.name, binding.metadata.namespace, binding.metadata.uid = pod_name, namespace, uid
        binding.target.kind, binding.target.name = "Node", node_name
        request = apiserver_pb2.BindRequest(binding=binding)
        answer = await self._pipelined(apiserver_pb2.PipelineCall(bind=request))
        response = answer.bound if answer is not None else await self._unary(self.stub.Bind, request)
        pod: core_pb2.Pod = response.pod
        return pod

    async def evict(self, pod_name: str, namespace: str, grace_period_seconds: int | None = None) -> None:
        eviction = policy_pb2.Eviction()
        eviction.metadata.name, eviction.metadata.namespace = pod_name, namespace
        if grace_period_seconds is not None:
            eviction.delete_options.grace_period_seconds = grace_period_seconds
        await self._unary(self.stub.Evict, apiserver_pb2.EvictRequest(eviction=eviction))

    async def create_token(
        self,
        service_account: str,
        namespace: str,
        request: authentication_pb2.TokenRequest | None = None,
    ) -> authentication_pb2.TokenRequest:
        """serviceaccounts/token: a bound token for `service_account` (status.token)."""
        call = apiserver_pb2.CreateTokenRequest(
            namespace=namespace,
            name=service_account,
            token_request=request or authentication_pb2.TokenRequest(),
        )
        answer: authentication_pb2.TokenRequest = await self._unary(self.stub.CreateToken, call)
        return answer

    async def get_scale(self, resource: Resource, name: str, namespace: str = "") -> autoscaling_pb2.Scale:
        request = apiserver_pb2.GetScaleRequest(
            resource=resource_name(resource), namespace=namespace, name=name
        )
        scale: autoscaling_pb2.Scale = await self._unary(self.stub.GetScale, request)
        return scale

    async def scale(
        self, resource: Resource, name: str, replicas: int, namespace: str = "", resource_version: str = ""
    ) -> autoscaling_pb2.Scale:
        scale = autoscaling_pb2.Scale()
        scale.metadata.name, scale.metadata.namespace = name, namespace
        scale.metadata.resource_version = resource_version
        scale.spec.replicas = replicas
        request = apiserver_pb2.UpdateScaleRequest(resource=resource_name(resource), scale=scale)
        result: autoscaling_pb2.Scale = await self._unary(self.stub.UpdateScale, request)
        return result
