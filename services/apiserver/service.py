"""The gRPC servicer: pinnace.apiserver.v1.API requests in, registry calls, typed objects out.

Errors become gRPC statuses with Kubernetes' meaning (errors.REASONS) and the full
metav1.Status in the trailing metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf.message import Message

from pinnace.api.authentication.v1 import authentication_pb2
from pinnace.api.authorization.v1 import authorization_pb2
from pinnace.api.autoscaling.v1 import autoscaling_pb2
from pinnace.api.core.v1 import core_pb2
from pinnace.apiserver.v1 import apiserver_pb2, apiserver_pb2_grpc
from services.apiserver import errors, metrics, pipeline
from services.apiserver.auth.guard import Credentials, RequestGuard
from services.apiserver.auth.review import review
from services.apiserver.eviction import Evictions
from services.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from services.apiserver.registry import Registry, meta_of
from services.apiserver.storage.interface import StorageUnavailableError
from services.apiserver.tokenrequest import TokenIssuer, create_token
from services.machinery import codec
from services.machinery import errors as ferr
from services.machinery import labels as label_selectors
from services.machinery.codec import ManifestError
from services.machinery.envelope import EnvelopeError, unwrap, wrap
from services.machinery.kinds import REGISTRY, KindInfo, UnknownKindError

log = structlog.get_logger("apiserver")
Context = grpc.aio.ServicerContext[Any, Any]
_T = TypeVar("_T")
BOOKMARK_INTERVAL_SECONDS = 60.0
# A WatchEventBatch message holds events up to about this many bytes (the limit is 64 MiB).
WATCH_BATCH_BYTES = 4 * 1024 * 1024
_SCALABLE = ("replicationcontrollers", "replicasets", "deployments", "statefulsets")


def resolve(resource: str) -> KindInfo:
    try:
        return REGISTRY.by_name(resource)
    except UnknownKindError as exc:
        raise errors.APIError("NotFound", str(exc)) from None


async def _abort(context: Context, error: errors.APIError) -> None:
    context.set_trailing_metadata(((errors.STATUS_METADATA_KEY, error.status().SerializeToString()),))
    await context.abort(error.code, error.message)


class APIService(apiserver_pb2_grpc.APIServicer):
    def __init__(
        self, registry: Registry, guard: RequestGuard, token_issuer: TokenIssuer | None = None
    ) -> None:
        self.registry = registry
        self.guard = guard
        # None without --service-account-signing-key-file: serviceaccounts/token is not served.
        self.token_issuer = token_issuer
        self.evictions = Evictions(registry)

    async def _call(
        self, verb: str, resource: str, context: Context, work: Callable[[], Awaitable[_T]]
    ) -> _T:
        """A unary call: the work's failure becomes the call's gRPC status and Status trailer."""
        try:
            return await self._serve(verb, resource, work)
        except errors.APIError as exc:
            await _abort(context, exc)
            raise

    async def _serve(self, verb: str, resource: str, work: Callable[[], Awaitable[_T]]) -> _T:
        """Run one request's work with its metrics; every failure leaves as an APIError."""
        start = time.perf_counter()
        code = "OK"
        inflight = metrics.child(metrics.INFLIGHT, "mutating" if verb not in ("get", "list") else "readonly")
        inflight.inc()
        try:
            return await work()
        except errors.APIError as exc:
            code = exc.code.name
            raise
        except StorageUnavailableError as exc:
            error = errors.APIError("ServiceUnavailable", f"storage is unavailable: {exc}")
            code = error.code.name
            raise error from None
        except (ManifestError, EnvelopeError) as exc:
            error = errors.bad_request(str(exc))
            code = error.code.name
            raise error from None
        except Exception as exc:
            log.exception("request failed", verb=verb, resource=resource)
            error = errors.internal(str(exc))
            code = error.code.name
            raise error from None
        finally:
            inflight.dec()
            metrics.child(metrics.REQUEST_LATENCY, verb, resource, code).observe(time.perf_counter() - start)

    def _check_object(self, context: Context, verb: str, obj: Message, subresource: str = "") -> None:
        info = REGISTRY.by_message(obj)
        meta = meta_of(obj)
        self.guard.check(context, verb, info, _namespace(info, meta.namespace), meta.name, subresource)

    # ------------------------------------------------------------------ CRUD

    async def Create(
        self,
        request: apiserver_pb2.CreateRequest,
        context: Context,
    ) -> apiserver_pb2.Object:
        return await self._call(
            "create", _resource_of(request.object), context, lambda: self._create(request, context)
        )

    async def _create(
        self, request: apiserver_pb2.CreateRequest, context: Context, credentials: Credentials | None = None
    ) -> apiserver_pb2.Object:
        obj = _copy(unwrap(request.object))
        info = REGISTRY.by_message(obj)
        if info.namespaced and not meta_of(obj).namespace:
            meta_of(obj).namespace = "default"
        self.guard.check(
            context, "create", info, meta_of(obj).namespace, meta_of(obj).name, credentials=credentials
        )
        if isinstance(obj, authorization_pb2.SubjectAccessReview):
            return wrap(review(self.guard.authorizer, obj))
        return wrap(await self.registry.create(obj, dry_run="All" in request.dry_run))

    async def Get(
        self,
        request: apiserver_pb2.GetRequest,
        context: Context,
    ) -> apiserver_pb2.Object:
        async def work() -> apiserver_pb2.Object:
            info = resolve(request.resource)
            namespace = _namespace(info, request.namespace)
            self.guard.check(context, "get", info, namespace, request.name)
            return wrap(await self.registry.get(info, namespace, request.name))

        return await self._call("get", request.resource, context, work)

    async def List(
        self,
        request: apiserver_pb2.ListRequest,
        context: Context,
    ) -> apiserver_pb2.ListResponse:
        async def work() -> apiserver_pb2.ListResponse:
            info = resolve(request.resource)
            self.guard.check(context, "list", info, request.namespace, field_selector=request.field_selector)
            page = await self.registry.list(
                info,
                request.namespace,
                request.label_selector,
                request.field_selector,
                int(request.limit),
                request.continue_token,
                request.resource_version,
                request.resource_version_match,
            )
            response = apiserver_pb2.ListResponse(items=[wrap(o) for o in page.items])
            response.metadata.resource_version = page.resource_version
            response.metadata.continue_token = page.continue_token
            return response

        return await self._call("list", request.resource, context, work)

    async def Update(
        self,
        request: apiserver_pb2.UpdateRequest,
        context: Context,
    ) -> apiserver_pb2.Object:
        async def work() -> apiserver_pb2.Object:
            obj = _copy(unwrap(request.object))
            self._check_object(context, "update", obj)
            return wrap(await self.registry.update(obj, dry_run="All" in request.dry_run))

        return await self._call("update", _resource_of(request.object), context, work)

    async def UpdateStatus(
        self,
        request: apiserver_pb2.UpdateRequest,
        context: Context,
    ) -> apiserver_pb2.Object:
        async def work() -> apiserver_pb2.Object:
            obj = _copy(unwrap(request.object))
            self._check_object(context, "update", obj, "status")
            return wrap(
                await self.registry.update(obj, subresource="status", dry_run="All" in request.dry_run)
            )

        return await self._call("update-status", _resource_of(request.object), context, work)

    async def Patch(
        self,
        request: apiserver_pb2.PatchRequest,
        context: Context,
    ) -> apiserver_pb2.Object:
        async def work() -> apiserver_pb2.Object:
            info = resolve(request.resource)
            self.guard.check(
                context, "patch", info, _namespace(info, request.namespace), request.name, request.subresource
            )
            if request.subresource not in ("", "status", "approval"):
                raise errors.bad_request(f"unsupported subresource {request.subresource!r}")
            try:
                document = json.loads(request.patch)
            except ValueError as exc:
                raise errors.bad_request(f"the patch is not valid JSON: {exc}") from None
            namespace = _namespace(info, request.namespace)
            for _ in range(5):
                current = await self.registry.get(info, namespace, request.name)
                patched = _apply_patch(info, current, request.type, document)
                meta_of(patched).resource_version = meta_of(current).resource_version
                try:
                    return wrap(await self.registry.update(patched, subresource=request.subresource))
                except errors.APIError as exc:
                    if exc.reason != "Conflict" or _pins_version(document):
                        raise
            raise errors.stale(info, request.name)

        return await self._call("patch", request.resource, context, work)

    async def Delete(
        self,
        request: apiserver_pb2.DeleteRequest,
        context: Context,
    ) -> apiserver_pb2.DeleteResponse:
        async def work() -> apiserver_pb2.DeleteResponse:
            info = resolve(request.resource)
            self.guard.check(context, "delete", info, _namespace(info, request.namespace), request.name)
            options = request.options if request.HasField("options") else None
            obj, removed = await self.registry.delete(
                info, _namespace(info, request.namespace), request.name, options
            )
            return apiserver_pb2.DeleteResponse(object=wrap(obj), removed=removed)

        return await self._call("delete", request.resource, context, work)

    # ------------------------------------------------------------------ watch

    async def Watch(
        self,
        request: apiserver_pb2.WatchRequest,
        context: Context,
    ) -> AsyncIterator[apiserver_pb2.WatchEvent]:
        async for batch in self._watch(request, context):
            for event in batch:
                yield event

    async def WatchBatches(
        self,
        request: apiserver_pb2.WatchRequest,
        context: Context,
    ) -> AsyncIterator[apiserver_pb2.WatchEventBatch]:
        async for batch in self._watch(request, context):
            message = apiserver_pb2.WatchEventBatch()
            size = 0
            for event in batch:
                if size >= WATCH_BATCH_BYTES:  # keep each message well under the size limit
                    yield message
                    message, size = apiserver_pb2.WatchEventBatch(), 0
                message.events.append(event)
                size += event.ByteSize()
            yield message

    async def Pipeline(
        self,
        request_iterator: AsyncIterator[apiserver_pb2.PipelineCalls],
        context: Context,
    ) -> AsyncIterator[apiserver_pb2.PipelineAnswers]:
        # One connection and one set of metadata carry every call of the stream: they are read
        # once here, and each call is authenticated from them and authorised on its own.
        credentials = self.guard.credentials(context)
        async for answers in pipeline.serve(
            request_iterator, lambda call: self._answer(call, context, credentials)
        ):
            yield answers

    async def _answer(
        self, call: apiserver_pb2.PipelineCall, context: Context, credentials: Credentials
    ) -> apiserver_pb2.PipelineAnswer:
        """One pipelined call, run as its unary RPC runs; its failure goes in the answer."""
        answer = apiserver_pb2.PipelineAnswer(id=call.id)
        try:
            which = call.WhichOneof("call")
            if which == "create":
                resource = _resource_of(call.create.object)
                created = await self._serve(
                    "create", resource, lambda: self._create(call.create, context, credentials)
                )
                answer.created.CopyFrom(created)
            elif which == "bind":
                bound = await self._serve("bind", "pods", lambda: self._bind(call.bind, context, credentials))
                answer.bound.CopyFrom(bound)
            else:
                raise errors.bad_request("a pipeline call must carry create or bind")
        except errors.APIError as exc:
            answer.error.CopyFrom(exc.status())
            answer.code = exc.code.value[0]
            answer.message = exc.message
        return answer

    async def _watch(
        self, request: apiserver_pb2.WatchRequest, context: Context
    ) -> AsyncIterator[list[apiserver_pb2.WatchEvent]]:
        """The watch both RPCs serve: batches of events, bookmarks while idle, the timeout."""
        try:
            info = resolve(request.resource)
            self.guard.check(context, "watch", info, request.namespace, field_selector=request.field_selector)
            stream = self.registry.watch(
                info,
                request.namespace,
                request.label_selector,
                request.field_selector,
                request.resource_version,
            )
        except errors.APIError as exc:
            await _abort(context, exc)
            return
        metrics.child(metrics.WATCHERS, info.plural).inc()
        deadline = time.monotonic() + request.timeout_seconds if request.timeout_seconds > 0 else None
        cache = self.registry.caches[info.plural]
        iterator = stream.__aiter__()
        pending: asyncio.Task[Any] | None = None
        try:
            while True:
                wait = BOOKMARK_INTERVAL_SECONDS if request.allow_watch_bookmarks else None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    wait = remaining if wait is None else min(wait, remaining)
                if wait is None:  # nothing to do while idle: just wait for the next batch
                    try:
                        items = await iterator.__anext__()
                    except StopAsyncIteration:
                        return
                else:  # the batch races the idle timer, and survives it
                    if pending is None:
                        pending = asyncio.ensure_future(iterator.__anext__())
                    done, _ = await asyncio.wait({pending}, timeout=wait)
                    if not done:
                        if request.allow_watch_bookmarks:
                            yield [_bookmark(info, cache.revision)]
                        continue
                    try:
                        items = pending.result()
                    except StopAsyncIteration:
                        return
                    finally:
                        pending = None
                for item in items:
                    metrics.child(metrics.WATCH_EVENTS, info.plural, item.type).inc()
                yield [apiserver_pb2.WatchEvent(type=item.type, object=wrap(item.obj)) for item in items]
        except errors.APIError as exc:
            await _abort(context, exc)
        except Exception as exc:
            error = (
                errors.expired(f"watch closed: {exc}")
                if "re-watch" in str(exc)
                else errors.internal(str(exc))
            )
            await _abort(context, error)
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            with contextlib.suppress(BaseException):
                await iterator.aclose()  # type: ignore[attr-defined]
            metrics.child(metrics.WATCHERS, info.plural).dec()

    # ------------------------------------------------------------------ subresources

    async def Bind(
        self,
        request: apiserver_pb2.BindRequest,
        context: Context,
    ) -> apiserver_pb2.BindResponse:
        return await self._call("bind", "pods", context, lambda: self._bind(request, context))

    async def _bind(
        self, request: apiserver_pb2.BindRequest, context: Context, credentials: Credentials | None = None
    ) -> apiserver_pb2.BindResponse:
        binding = request.binding
        pods = REGISTRY.by_name("pods")
        if not binding.target.name:
            raise errors.invalid(
                REGISTRY.by_name("pods"), binding.metadata.name, [ferr.required("target.name")]
            )
        namespace = binding.metadata.namespace or "default"
        self.guard.check(
            context, "create", pods, namespace, binding.metadata.name, "binding", credentials=credentials
        )

        def assign(pod: Message) -> None:
            assert isinstance(pod, core_pb2.Pod)
            if pod.spec.node_name:
                raise errors.conflict(
                    pods,
                    pod.metadata.name,
                    f'pod {pod.metadata.name} is already assigned to node "{pod.spec.node_name}"',
                )
            if pod.metadata.HasField("deletion_timestamp"):
                raise errors.conflict(pods, pod.metadata.name, "pod is being deleted, cannot be assigned")
            if binding.metadata.uid and binding.metadata.uid != pod.metadata.uid:
                raise errors.conflict(pods, pod.metadata.name, "the UID of the binding does not match")
            pod.spec.node_name = binding.target.name
            kept = [c for c in pod.status.conditions if c.type != "PodScheduled"]
            del pod.status.conditions[:]
            pod.status.conditions.extend(kept)
            condition = pod.status.conditions.add(type="PodScheduled", status="True")
            condition.last_transition_time.GetCurrentTime()
            condition.last_transition_time.nanos = 0

        # One write: the node and the PodScheduled condition together.
        bound = await self.registry.update_with(
            pods, namespace, binding.metadata.name, assign, subresource="binding"
        )
        assert isinstance(bound, core_pb2.Pod)
        return apiserver_pb2.BindResponse(pod=bound)

    async def Evict(
        self,
        request: apiserver_pb2.EvictRequest,
        context: Context,
    ) -> apiserver_pb2.EvictResponse:
        async def work() -> apiserver_pb2.EvictResponse:
            eviction = request.eviction
            self.guard.check(
                context,
                "create",
                REGISTRY.by_name("pods"),
                eviction.metadata.namespace or "default",
                eviction.metadata.name,
                "eviction",
            )
            options = eviction.delete_options if eviction.HasField("delete_options") else None
            await self.evictions.evict(
                eviction.metadata.namespace or "default", eviction.metadata.name, options
            )
            return apiserver_pb2.EvictResponse()

        return await self._call("evict", "pods", context, work)

    async def GetScale(
        self,
        request: apiserver_pb2.GetScaleRequest,
        context: Context,
    ) -> autoscaling_pb2.Scale:
        async def work() -> autoscaling_pb2.Scale:
            info = _scalable(request.resource)
            return _scale_of(
                info, await self.registry.get(info, request.namespace or "default", request.name)
            )

        return await self._call("get-scale", request.resource, context, work)

    async def UpdateScale(
        self,
        request: apiserver_pb2.UpdateScaleRequest,
        context: Context,
    ) -> autoscaling_pb2.Scale:
        async def work() -> autoscaling_pb2.Scale:
            info = _scalable(request.resource)
            scale = request.scale
            self.guard.check(
                context, "update", info, scale.metadata.namespace or "default", scale.metadata.name, "scale"
            )
            if scale.spec.replicas < 0:
                raise errors.invalid(
                    info,
                    scale.metadata.name,
                    [
                        ferr.invalid(
                            "spec.replicas", scale.spec.replicas, "must be greater than or equal to 0"
                        )
                    ],
                )
            namespace = scale.metadata.namespace or "default"

            def resize(current: Any) -> None:
                # A Scale with a resourceVersion is conditional on it; one without is not, and
                # a controller's status write meanwhile only costs a retry (as in Kubernetes).
                wanted = scale.metadata.resource_version
                if wanted and wanted != meta_of(current).resource_version:
                    raise errors.stale(info, scale.metadata.name)
                current.spec.replicas = scale.spec.replicas

            return _scale_of(
                info, await self.registry.update_with(info, namespace, scale.metadata.name, resize)
            )

        return await self._call("update-scale", request.resource, context, work)

    async def CreateToken(
        self,
        request: apiserver_pb2.CreateTokenRequest,
        context: Context,
    ) -> authentication_pb2.TokenRequest:
        async def work() -> authentication_pb2.TokenRequest:
            accounts = REGISTRY.by_name("serviceaccounts")
            namespace = request.namespace or "default"
            self.guard.check(context, "create", accounts, namespace, request.name, "token")
            if self.token_issuer is None:
                raise errors.APIError(
                    "NotFound",
                    "the server could not find the requested resource (serviceaccounts/token): "
                    "the apiserver has no --service-account-signing-key-file",
                )
            return await create_token(
                self.registry, self.token_issuer, namespace, request.name, request.token_request
            )

        return await self._call("create-token", "serviceaccounts", context, work)

    async def Version(
        self, request: apiserver_pb2.VersionRequest, context: Context
    ) -> apiserver_pb2.VersionInfo:
        """Public like Kubernetes' /version: no authorization check."""
        return apiserver_pb2.VersionInfo(
            git_version=f"v{importlib.metadata.version('pinnace')}",
            platform=f"{platform.system().lower()}/{platform.machine()}",
            python_version=platform.python_version(),
        )


# ---------------------------------------------------------------------- helpers


def _copy(obj: Message) -> Message:
    fresh = type(obj)()
    fresh.CopyFrom(obj)
    return fresh


def _resource_of(envelope: apiserver_pb2.Object) -> str:
    which = envelope.WhichOneof("kind")
    if which is None:
        return "unknown"
    return REGISTRY.by_message(getattr(envelope, which)).plural


def _namespace(info: KindInfo, namespace: str) -> str:
    if not info.namespaced:
        return ""
    return namespace or "default"


def _bookmark(info: KindInfo, revision: int) -> apiserver_pb2.WatchEvent:
    marker = info.new()
    meta_of(marker).resource_version = str(revision)
    return apiserver_pb2.WatchEvent(type="BOOKMARK", object=wrap(marker))


def _pins_version(document: Any) -> bool:
    return isinstance(document, dict) and bool((document.get("metadata") or {}).get("resourceVersion"))


def _apply_patch(info: KindInfo, current: Message, patch_type: int, document: Any) -> Message:
    original = codec.encode_object(current)
    try:
        if patch_type == apiserver_pb2.PatchRequest.MERGE:
            patched = merge_patch(original, document)
        elif patch_type == apiserver_pb2.PatchRequest.STRATEGIC_MERGE:
            patched = strategic_merge_patch(original, document)
        else:
            patched = json_patch(original, document)
    except PatchError as exc:
        raise errors.bad_request(str(exc)) from None
    if not isinstance(patched, dict):
        raise errors.bad_request("the patch did not produce an object")
    if patched.get("apiVersion") != info.api_version or patched.get("kind") != info.kind:
        raise errors.bad_request("a patch may not change apiVersion or kind")
    try:
        return codec.decode_object(patched).obj
    except ManifestError as exc:
        raise errors.invalid(info, meta_of(current).name, exc.errors) from None


def _scalable(resource: str) -> KindInfo:
    info = resolve(resource)
    if info.plural not in _SCALABLE:
        raise errors.APIError(
            "NotFound", f"the server could not find the requested resource ({resource}/scale)"
        )
    return info


def _scale_of(info: KindInfo, obj: Message) -> autoscaling_pb2.Scale:
    meta = meta_of(obj)
    scale = autoscaling_pb2.Scale()
    scale.metadata.name, scale.metadata.namespace = meta.name, meta.namespace
    scale.metadata.uid, scale.metadata.resource_version = meta.uid, meta.resource_version
    scale.metadata.creation_timestamp.CopyFrom(meta.creation_timestamp)
    spec, status = obj.spec, obj.status  # type: ignore[attr-defined]
    scale.spec.replicas = spec.replicas
    scale.status.replicas = status.replicas
    if info.plural == "replicationcontrollers":
        scale.status.selector = str(label_selectors.from_set(spec.selector))
    else:
        scale.status.selector = str(label_selectors.from_label_selector(spec.selector))
    return scale
