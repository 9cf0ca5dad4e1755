"""`cordon`, `uncordon` and `drain` (kubectl's pkg/drain): mark a node unschedulable, then
evict its pods through the eviction subresource, so the apiserver can refuse an eviction a
PodDisruptionBudget forbids (429: retried until --timeout). Pods that would not come back
are refused unless a flag says otherwise: DaemonSet pods (--ignore-daemonsets skips them),
pods with emptyDir data (--delete-emptydir-data), pods no controller recreates (--force)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.cli.errors import CLIError
from services.cli.ops.duration import format_duration
from services.cli.ops.objects import controller_of, update_with_retries
from services.client.client import Client
from services.client.errors import APIStatusError, ForbiddenError, NotFoundError
from services.machinery.kinds import REGISTRY

NODES = REGISTRY.by_name("nodes")
PODS = REGISTRY.by_name("pods")
DAEMON_SETS = REGISTRY.by_name("daemonsets")
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"

DAEMONSET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"

OKAY, SKIP, WARNING, ERROR = "Okay", "Skip", "Warning", "Error"

Emit = Callable[[str], None]


def aggregate(messages: list[str]) -> str:
    """Go's utilerrors.NewAggregate(...).Error()."""
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


# ---------------------------------------------------------------------- cordon


async def set_unschedulable(client: Client, name: str, desired: bool, *, dry_run: bool = False) -> str:
    """`cordoned`/`uncordoned`, or `already ...` when the node is that way already."""
    verb = "cordoned" if desired else "uncordoned"
    node = await client.get(NODES, name)
    assert isinstance(node, core_pb2.Node)
    if node.spec.unschedulable == desired:
        return f"already {verb}"
    if not dry_run:

        def apply(obj: Message) -> None:
            assert isinstance(obj, core_pb2.Node)
            obj.spec.unschedulable = desired

        await update_with_retries(client, NODES, name, "", apply)
    return verb


# ---------------------------------------------------------------------- choosing pods


@dataclass
class DrainOptions:
    force: bool = False
    ignore_daemonsets: bool = False
    delete_emptydir_data: bool = False
    grace_period: int = -1  # negative: each pod's own terminationGracePeriodSeconds
    timeout: float = 0.0  # 0: wait forever
    pod_selector: str = ""
    disable_eviction: bool = False
    skip_wait_for_delete_timeout: int = 0
    retry_delay: float = 5.0
    poll_interval: float = 1.0


@dataclass(frozen=True)
class PodDelete:
    pod: core_pb2.Pod
    delete: bool
    reason: str
    message: str = ""


def _finished(pod: core_pb2.Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def _skip_deleted(pod: core_pb2.Pod, options: DrainOptions) -> bool:
    if options.skip_wait_for_delete_timeout <= 0 or not pod.metadata.HasField("deletion_timestamp"):
        return False
    return time.time() - pod.metadata.deletion_timestamp.seconds > options.skip_wait_for_delete_timeout


async def _daemonset_filter(client: Client, pod: core_pb2.Pod, options: DrainOptions) -> PodDelete:
    ref = controller_of(pod)
    if ref is None or ref.kind != "DaemonSet" or _finished(pod):
        return PodDelete(pod, True, OKAY)
    try:
        await client.get(DAEMON_SETS, ref.name, pod.metadata.namespace)
    except NotFoundError as exc:
        if options.force:
            return PodDelete(pod, True, WARNING, exc.message)
        return PodDelete(pod, False, ERROR, exc.message)
    if not options.ignore_daemonsets:
        return PodDelete(pod, False, ERROR, DAEMONSET_FATAL)
    return PodDelete(pod, False, WARNING, DAEMONSET_WARNING)


def _mirror_filter(pod: core_pb2.Pod, _options: DrainOptions) -> PodDelete:
    if MIRROR_ANNOTATION in pod.metadata.annotations:
        return PodDelete(pod, False, SKIP)
    return PodDelete(pod, True, OKAY)


def _local_storage_filter(pod: core_pb2.Pod, options: DrainOptions) -> PodDelete:
    if not any(v.HasField("empty_dir") for v in pod.spec.volumes) or _finished(pod):
        return PodDelete(pod, True, OKAY)
    if not options.delete_emptydir_data:
        return PodDelete(pod, False, ERROR, LOCAL_STORAGE_FATAL)
    return PodDelete(pod, True, WARNING, LOCAL_STORAGE_WARNING)


def _unreplicated_filter(pod: core_pb2.Pod, options: DrainOptions) -> PodDelete:
    if _finished(pod) or controller_of(pod) is not None:
        return PodDelete(pod, True, OKAY)
    if options.force:
        return PodDelete(pod, True, WARNING, UNMANAGED_WARNING)
    return PodDelete(pod, False, ERROR, UNMANAGED_FATAL)


async def classify(client: Client, pod: core_pb2.Pod, options: DrainOptions) -> PodDelete:
    """kubectl's filters in their order; the first that keeps the pod decides."""
    if _skip_deleted(pod, options):
        return PodDelete(pod, False, SKIP)
    status = await _daemonset_filter(client, pod, options)
    if not status.delete:
        return status
    for check in (_mirror_filter, _local_storage_filter, _unreplicated_filter):
        status = check(pod, options)
        if not status.delete:
            return status
    return status


@dataclass
class PodList:
    items: list[PodDelete]

    def pods(self) -> list[core_pb2.Pod]:
        return [item.pod for item in self.items if item.delete]

    def _grouped(self, reason: str) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for item in self.items:
            if item.reason == reason:
                key = item.message or ("unexpected error" if reason == ERROR else "")
                grouped.setdefault(key, []).append(f"{item.pod.metadata.namespace}/{item.pod.metadata.name}")
        return grouped

    def warnings(self) -> str:
        return "; ".join(f"{message}: {', '.join(pods)}" for message, pods in self._grouped(WARNING).items())

    def errors(self) -> list[str]:
        """One message per reason, in the order of kubectl's filters."""
        grouped = self._grouped(ERROR)
        order = [m for m in (DAEMONSET_FATAL, LOCAL_STORAGE_FATAL, UNMANAGED_FATAL) if m in grouped]
        order += [m for m in grouped if m not in order]
        return [f"cannot delete {message}: {', '.join(grouped[message])}" for message in order]


async def pods_for_deletion(client: Client, node: str, options: DrainOptions) -> PodList:
    listed = await client.list_all(
        PODS, "", label_selector=options.pod_selector, field_selector=f"spec.nodeName={node}"
    )
    items = []
    for pod in listed.items:
        assert isinstance(pod, core_pb2.Pod)
        items.append(await classify(client, pod, options))
    return PodList(items)


# ---------------------------------------------------------------------- evicting


def _retryable(exc: APIStatusError) -> bool:
    """429 TooManyRequests: a disruption budget refuses the eviction for now."""
    return exc.reason == "TooManyRequests" or exc.status.reason == "TooManyRequests"


def _namespace_terminating(exc: APIStatusError) -> bool:
    return isinstance(exc, ForbiddenError) and any(
        c.reason == NAMESPACE_TERMINATING_CAUSE for c in exc.causes
    )


class Drainer:
    def __init__(self, client: Client, options: DrainOptions, out: Emit, err: Emit) -> None:
        self.client = client
        self.options = options
        self.out = out
        self.err = err

    def _grace(self) -> int | None:
        return self.options.grace_period if self.options.grace_period >= 0 else None

    async def delete_or_evict(self, pods: list[core_pb2.Pod]) -> None:
        """Every pod gone (or refused with an error): concurrently, bounded by --timeout."""
        if not pods:
            return
        if self.options.disable_eviction:
            work = [self._delete_one(pod) for pod in pods]
        else:
            work = [self._evict_one(pod) for pod in pods]
        results = await asyncio.gather(*work)
        problems = [message for message in results if message]
        if problems:
            raise CLIError(aggregate(problems))

    def _pause(self, deadline: float | None) -> float:
        """The retry delay, cut short by --timeout (which then ends the attempt)."""
        if deadline is None:
            return self.options.retry_delay
        return max(0.0, min(self.options.retry_delay, deadline - time.monotonic()))

    def _timeout_text(self) -> str:
        return format_duration(self.options.timeout)

    async def _evict_one(self, pod: core_pb2.Pod) -> str:
        deadline = time.monotonic() + self.options.timeout if self.options.timeout > 0 else None
        name, namespace = pod.metadata.name, pod.metadata.namespace
        active = pod
        while True:
            self.out(f"evicting pod {namespace}/{name}")
            if deadline is not None and time.monotonic() > deadline:
                return (
                    f'error when evicting pods/"{name}" -n "{namespace}": global timeout reached: '
                    f"{self._timeout_text()}"
                )
            try:
                await self.client.evict(name, namespace, self._grace())
                break
            except NotFoundError:
                return ""
            except APIStatusError as exc:
                if _retryable(exc):
                    self.err(
                        f'error when evicting pods/"{name}" -n "{namespace}" (will retry after '
                        f"{format_duration(self.options.retry_delay)}): {exc.message}"
                    )
                    await asyncio.sleep(self._pause(deadline))
                elif _namespace_terminating(exc):
                    if active.metadata.HasField("deletion_timestamp"):
                        break
                    self.err(
                        f'error when evicting pod "{name}" from terminating namespace "{namespace}" '
                        f"(will retry after {format_duration(self.options.retry_delay)}): {exc.message}"
                    )
                    await asyncio.sleep(self._pause(deadline))
                else:
                    return f'error when evicting pods/"{name}" -n "{namespace}": {exc.message}'
            try:
                fresh = await self.client.get(PODS, name, namespace)
                assert isinstance(fresh, core_pb2.Pod)
                active = fresh
            except APIStatusError:
                pass
        problem = await self._wait_for_delete(active, deadline)
        if problem:
            return f'error when waiting for pod "{name}" in namespace "{namespace}" to terminate: {problem}'
        self.out(f"pod/{name} evicted")
        return ""

    async def _delete_one(self, pod: core_pb2.Pod) -> str:
        deadline = time.monotonic() + self.options.timeout if self.options.timeout > 0 else None
        try:
            await self.client.delete(
                PODS, pod.metadata.name, pod.metadata.namespace, grace_period_seconds=self._grace()
            )
        except NotFoundError:
            pass
        except APIStatusError as exc:
            return exc.message
        problem = await self._wait_for_delete(pod, deadline)
        if problem:
            return problem
        self.out(f"pod/{pod.metadata.name} deleted")
        return ""

    async def _wait_for_delete(self, pod: core_pb2.Pod, deadline: float | None) -> str:
        """ "" once the pod is gone (or replaced by one with another uid), else the problem."""
        while True:
            try:
                current = await self.client.get(PODS, pod.metadata.name, pod.metadata.namespace)
            except NotFoundError:
                return ""
            except APIStatusError as exc:
                return exc.message
            assert isinstance(current, core_pb2.Pod)
            if current.metadata.uid != pod.metadata.uid:
                return ""
            if _skip_deleted(current, self.options):
                self.out(
                    f'pod "{current.metadata.name}" has DeletionTimestamp older than '
                    f"{self.options.skip_wait_for_delete_timeout} seconds, skipping"
                )
                return ""
            if deadline is not None and time.monotonic() > deadline:
                return f"global timeout reached: {self._timeout_text()}"
            await asyncio.sleep(self.options.poll_interval)


async def drain_node(
    client: Client, node: str, options: DrainOptions, out: Emit, err: Emit, *, dry_run: bool = False
) -> None:
    """Evict (or delete) what may go; refuse the whole node when any pod may not."""
    listing = await pods_for_deletion(client, node, options)
    errors = listing.errors()
    if errors:
        raise CLIError(aggregate(errors))
    warnings = listing.warnings()
    if warnings:
        err(f"Warning: {warnings}")
    if dry_run:
        for pod in listing.pods():
            out(f"evicting pod {pod.metadata.namespace}/{pod.metadata.name} (dry run)")
        return
    drainer = Drainer(client, options, out, err)
    try:
        await drainer.delete_or_evict(listing.pods())
    except CLIError as exc:
        pending = await pods_for_deletion(client, node, options)
        left = pending.pods()
        if left:
            err(f'There are pending pods in node "{node}" when an error occurred: {exc.message}')
            for pod in left:
                err(f"pod/{pod.metadata.name}")
        raise
