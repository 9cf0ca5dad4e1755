"""The NodeProxy service (protos/pinnace/apiserver/v1/nodeproxy.proto): pods/log, pods/exec,
pods/attach, pods/portforward and the nodes' stats, proxied to the kubelet of the pod's node.

Every call is authorised for its subresource before anything is read, so a refused caller
learns nothing and changes nothing; then the pod is checked as Kubernetes does (pod_checks.py),
its node resolved to the kubelet's address (kubelet_client.py), and the kubelet's messages are
relayed unchanged in both directions: the request stream, its half-close, every output message,
and the final status. Kubelet failures come back as API errors (a Status in the trailing
metadata) with the kubelet's message."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn, TypeVar

import grpc
import structlog
from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from pinnace.apiserver.v1 import nodeproxy_pb2, nodeproxy_pb2_grpc
from pinnace.kubelet.v1 import kubelet_pb2 as kpb
from pinnace.kubelet.v1 import kubelet_pb2_grpc as kpb_grpc
from services.apiserver import errors
from services.apiserver.auth.guard import RequestGuard
from services.apiserver.kubelet_client import KubeletDialer, KubeletTarget, target_of
from services.apiserver.pod_checks import check_log_status, require_node, validate_container
from services.apiserver.registry import Registry
from services.apiserver.storage.interface import StorageUnavailableError
from services.machinery.kinds import REGISTRY

log = structlog.get_logger("apiserver")
Context = grpc.aio.ServicerContext[Any, Any]
_In = TypeVar("_In", bound=Message)
STATS_TIMEOUT_SECONDS = 30.0

# The kubelet's gRPC codes, as the API reasons the user sees.
_KUBELET_REASONS = {
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.INVALID_ARGUMENT: "BadRequest",
    grpc.StatusCode.FAILED_PRECONDITION: "BadRequest",
    grpc.StatusCode.OUT_OF_RANGE: "BadRequest",
    grpc.StatusCode.PERMISSION_DENIED: "Forbidden",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthorized",
    grpc.StatusCode.UNAVAILABLE: "ServiceUnavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "ServiceUnavailable",
}


async def _abort(context: Context, error: errors.APIError) -> NoReturn:
    context.set_trailing_metadata(((errors.STATUS_METADATA_KEY, error.status().SerializeToString()),))
    await context.abort(error.code, error.message)


def _api_error(exc: Exception) -> errors.APIError:
    if isinstance(exc, errors.APIError):
        return exc
    if isinstance(exc, StorageUnavailableError):
        return errors.APIError("ServiceUnavailable", f"storage is unavailable: {exc}")
    log.exception("node proxy request failed")
    return errors.internal(str(exc))


def _from_kubelet(exc: grpc.aio.AioRpcError, target: KubeletTarget) -> errors.APIError:
    details = exc.details() or exc.code().name
    if exc.code() == grpc.StatusCode.UNAVAILABLE and "failed to connect" in details:
        return errors.APIError("ServiceUnavailable", f"error dialing backend: {target.address}: {details}")
    reason = _KUBELET_REASONS.get(exc.code())
    if reason is None:
        return errors.internal(f"kubelet {target.node}: {details}")
    return errors.APIError(reason, details)


async def _then(first: _In, rest: AsyncIterator[_In]) -> AsyncIterator[_In]:
    """The request stream the kubelet sees: the checked first message, then the caller's
    messages as they come; when the caller half-closes, so does this."""
    yield first
    async for message in rest:
        yield message


class NodeProxyService(nodeproxy_pb2_grpc.NodeProxyServicer):
    def __init__(self, registry: Registry, guard: RequestGuard, kubelets: KubeletDialer) -> None:
        self.registry = registry
        self.guard = guard
        self.kubelets = kubelets

    async def _pod(self, context: Context, verb: str, subresource: str, ref: kpb.PodRef) -> core_pb2.Pod:
        """Authorise, then read the pod (NotFound as Kubernetes words it)."""
        pods = REGISTRY.by_name("pods")
        namespace = ref.namespace or "default"
        self.guard.check(context, verb, pods, namespace, ref.name, subresource)
        if not ref.name:
            raise errors.bad_request("a pod name is required")
        pod = await self.registry.get(pods, namespace, ref.name)
        assert isinstance(pod, core_pb2.Pod)
        if ref.uid and ref.uid != pod.metadata.uid:
            raise errors.not_found(pods, ref.name)
        return pod

    async def _target(self, node_name: str) -> KubeletTarget:
        node = await self.registry.get(REGISTRY.by_name("nodes"), "", node_name)
        assert isinstance(node, core_pb2.Node)
        return target_of(node, self.kubelets.config.preferred_address_types)

    @staticmethod
    def _named(ref: kpb.PodRef, pod: core_pb2.Pod) -> kpb.PodRef:
        return kpb.PodRef(namespace=pod.metadata.namespace, name=pod.metadata.name, uid=ref.uid)

    # ---------------------------------------------------------------- logs

    async def PodLogs(  # noqa: N802
        self, request: kpb.ContainerLogsRequest, context: Context
    ) -> AsyncIterator[kpb.LogChunk]:
        try:
            pod = await self._pod(context, "get", "log", request.pod)
            container = validate_container(pod, request.container)
            if not pod.spec.node_name:
                return  # Kubernetes answers an unscheduled pod's log with an empty body
            check_log_status(pod, container, request.previous)
            target = await self._target(pod.spec.node_name)
        except Exception as exc:
            await _abort(context, _api_error(exc))
        forwarded = kpb.ContainerLogsRequest()
        forwarded.CopyFrom(request)
        forwarded.pod.CopyFrom(self._named(request.pod, pod))
        forwarded.container = container
        async for chunk in self._relay(target, context, lambda stub: stub.ContainerLogs(forwarded)):
            yield chunk

    # ---------------------------------------------------------------- exec and attach

    async def PodExec(  # noqa: N802
        self, request_iterator: AsyncIterator[kpb.ExecInput], context: Context
    ) -> AsyncIterator[kpb.ExecOutput]:
        async for output in self._command(request_iterator, context, "exec"):
            yield output

    async def PodAttach(  # noqa: N802
        self, request_iterator: AsyncIterator[kpb.ExecInput], context: Context
    ) -> AsyncIterator[kpb.ExecOutput]:
        async for output in self._command(request_iterator, context, "attach"):
            yield output

    async def _command(
        self, requests: AsyncIterator[kpb.ExecInput], context: Context, subresource: str
    ) -> AsyncIterator[kpb.ExecOutput]:
        try:
            first = await anext(requests, None)
            if first is None or not first.HasField("start"):
                raise errors.bad_request("the first message must carry start (pod, container, command)")
            start = first.start
            pod = await self._pod(context, "create", subresource, start.pod)
            container = validate_container(pod, start.container)
            if subresource == "exec" and not start.command:
                raise errors.bad_request("you must specify at least one command for the container")
            target = await self._target(require_node(pod))
        except Exception as exc:
            await _abort(context, _api_error(exc))
        forwarded = kpb.ExecInput()
        forwarded.CopyFrom(first)
        forwarded.start.pod.CopyFrom(self._named(start.pod, pod))
        forwarded.start.container = container
        stream = _then(forwarded, requests)

        def open_call(stub: kpb_grpc.NodeAPIStub) -> Any:
            return (stub.Exec if subresource == "exec" else stub.Attach)(stream)

        async for output in self._relay(target, context, open_call):
            yield output

    # ---------------------------------------------------------------- port-forward

    async def PodPortForward(  # noqa: N802
        self, request_iterator: AsyncIterator[kpb.PortForwardInput], context: Context
    ) -> AsyncIterator[kpb.PortForwardOutput]:
        try:
            first = await anext(request_iterator, None)
            if first is None or not first.HasField("start"):
                raise errors.bad_request("the first message must carry start (pod, port)")
            start = first.start
            pod = await self._pod(context, "create", "portforward", start.pod)
            if not 0 < start.port <= 65535:
                raise errors.bad_request(f"invalid port {start.port}: must be between 1 and 65535")
            target = await self._target(require_node(pod))
        except Exception as exc:
            await _abort(context, _api_error(exc))
        forwarded = kpb.PortForwardInput()
        forwarded.CopyFrom(first)
        forwarded.start.pod.CopyFrom(self._named(start.pod, pod))
        stream = _then(forwarded, request_iterator)
        async for output in self._relay(target, context, lambda stub: stub.PortForward(stream)):
            yield output

    # ---------------------------------------------------------------- stats

    async def NodeStats(  # noqa: N802
        self, request: nodeproxy_pb2.NodeStatsRequest, context: Context
    ) -> kpb.Summary:
        try:
            nodes = REGISTRY.by_name("nodes")
            try:
                self.guard.check(context, "get", nodes, "", request.node_name, "stats")
            except errors.APIError as refused:
                if refused.reason != "Forbidden":
                    raise
                try:
                    self.guard.check(context, "get", nodes, "", request.node_name, "proxy")
                except errors.APIError:
                    raise refused from None
            if not request.node_name:
                raise errors.bad_request("a node name is required")
            target = await self._target(request.node_name)
            async with self.kubelets.channel(target) as channel:
                stub = kpb_grpc.NodeAPIStub(channel)
                try:
                    summary: kpb.Summary = await stub.StatsSummary(
                        kpb.StatsSummaryRequest(), timeout=STATS_TIMEOUT_SECONDS
                    )
                except grpc.aio.AioRpcError as exc:
                    raise _from_kubelet(exc, target) from None
            return summary
        except Exception as exc:
            await _abort(context, _api_error(exc))

    # ---------------------------------------------------------------- relay

    async def _relay(
        self, target: KubeletTarget, context: Context, open_call: Callable[[kpb_grpc.NodeAPIStub], Any]
    ) -> AsyncIterator[Any]:
        """Every message of the kubelet's stream, then its status as the call's; the kubelet
        call and its channel end when the caller goes away."""
        error: errors.APIError | None = None
        try:
            async with self.kubelets.channel(target) as channel:
                call = open_call(kpb_grpc.NodeAPIStub(channel))
                try:
                    async for message in call:
                        yield message
                finally:
                    call.cancel()
        except grpc.aio.AioRpcError as exc:
            error = _from_kubelet(exc, target)
            log.info("kubelet call failed", node=target.node, code=exc.code().name, reason=error.reason)
        except errors.APIError as exc:
            error = exc
        if error is not None:
            await _abort(context, error)
