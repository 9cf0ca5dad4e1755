"""`rolling-update`: kubectl's client-side rolling update of a ReplicationController
(pkg/kubectl/rolling_updater.go before Deployments replaced it).

A new controller is created with 0 replicas and a `kubectl.kubernetes.io/desired-replicas`
annotation; then, until the new one has the desired count and the old one none, the new
controller is scaled up as far as maxSurge allows and, after --update-period, the old one is
scaled down as far as the pods the *new* controller has Ready allow (maxUnavailable 0: the
available count never drops below the desired count, so a Service in front keeps answering).
Annotations on both controllers record the update, so an interrupted run resumes and
`--rollback` reverses it. At the end the old controller is deleted, and when the user kept
the old name the new controller is renamed to it (orphaning, then re-adopting, its pods).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.cli.errors import CLIError
from services.cli.ops.objects import is_available, update_with_retries
from services.client.client import Client
from services.client.errors import ConflictError, NotFoundError
from services.machinery import codec, labels
from services.machinery.kinds import REGISTRY

RCS = REGISTRY.by_name("replicationcontrollers")
PODS = REGISTRY.by_name("pods")

_PREFIX = "kubectl.kubernetes.io/"
SOURCE_ID = _PREFIX + "update-source-id"
DESIRED_REPLICAS = _PREFIX + "desired-replicas"
ORIGINAL_REPLICAS = _PREFIX + "original-replicas"
NEXT_CONTROLLER = _PREFIX + "next-controller-id"

DELETE = "Delete"
RENAME = "Rename"
PRESERVE = "Preserve"

Emit = Callable[[str], None]


@dataclass
class UpdateConfig:
    old: core_pb2.ReplicationController
    new: core_pb2.ReplicationController
    update_period: float = 60.0
    poll_interval: float = 3.0
    timeout: float = 300.0
    max_unavailable: int = 0
    max_surge: int = 1
    min_ready_seconds: int = 0
    cleanup: str = DELETE


def _copy(rc: core_pb2.ReplicationController) -> core_pb2.ReplicationController:
    fresh = core_pb2.ReplicationController()
    fresh.CopyFrom(rc)
    return fresh


def _replicas(rc: core_pb2.ReplicationController) -> int:
    return rc.spec.replicas if rc.spec.HasField("replicas") else 1


class RollingUpdater:
    def __init__(self, client: Client, namespace: str, emit: Emit) -> None:
        self.client = client
        self.namespace = namespace
        self.emit = emit

    # ------------------------------------------------------------------ the loop

    async def update(self, config: UpdateConfig) -> None:
        old = config.old
        source_id = f"{old.metadata.name}:{old.metadata.uid}"
        new, existed = await self.get_or_create_target(config.new, source_id)
        if existed:
            self.emit(f"Continuing update with existing controller {new.metadata.name}.")
        else:
            self.emit(f"Created {new.metadata.name}")
        text = new.metadata.annotations.get(DESIRED_REPLICAS, "")
        try:
            desired = int(text)
        except ValueError:
            raise CLIError(
                f"Unable to parse annotation for {new.metadata.name}: {DESIRED_REPLICAS}={text}"
            ) from None
        if ORIGINAL_REPLICAS not in old.metadata.annotations:
            original = str(_replicas(await self._get(old.metadata.name)))
            old = await self._update(
                old.metadata.name, lambda rc: rc.metadata.annotations.update({ORIGINAL_REPLICAS: original})
            )
        max_surge, max_unavailable = config.max_surge, config.max_unavailable
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1  # deploymentutil.ResolveFenceposts
        if desired > 0 and max_unavailable == 0 and max_surge == 0:
            raise CLIError("one of maxSurge or maxUnavailable must be specified")
        min_available = max(0, desired - max_unavailable)
        if desired == 0:
            max_unavailable = _replicas(old)
            min_available = 0
        self.emit(
            f"Scaling up {new.metadata.name} from {_replicas(new)} to {desired}, scaling down "
            f"{old.metadata.name} from {_replicas(old)} to 0 (keep {min_available} pods available, "
            f"don't exceed {desired + max_surge} pods)"
        )
        deadline = time.monotonic() + config.timeout
        while _replicas(new) != desired or _replicas(old) != 0:
            before = (_replicas(new), _replicas(old))
            new = await self.scale_up(new, old, desired, max_surge, config)
            await asyncio.sleep(config.update_period)
            old = await self.scale_down(new, old, desired, min_available, config)
            if (_replicas(new), _replicas(old)) != before:
                deadline = time.monotonic() + config.timeout
            elif time.monotonic() > deadline:
                raise CLIError("timed out waiting for any update progress to be made")
            else:
                # Nothing could move (the new pods are not Ready yet): look again after a poll.
                await asyncio.sleep(config.poll_interval)
        await self.cleanup(old, new, config)

    async def scale_up(
        self,
        new: core_pb2.ReplicationController,
        old: core_pb2.ReplicationController,
        desired: int,
        max_surge: int,
        config: UpdateConfig,
    ) -> core_pb2.ReplicationController:
        """As far as the surge limit allows; all the way once the old one is gone."""
        if _replicas(new) == desired:
            return new
        increment = desired + max_surge - (_replicas(old) + _replicas(new))
        if _replicas(old) == 0:
            increment = desired - _replicas(new)
        if increment <= 0:
            return new
        target = min(_replicas(new) + increment, desired)
        self.emit(f"Scaling {new.metadata.name} up to {target}")
        return await self.scale_and_wait(new, target, config)

    async def scale_down(
        self,
        new: core_pb2.ReplicationController,
        old: core_pb2.ReplicationController,
        desired: int,
        min_available: int,
        config: UpdateConfig,
    ) -> core_pb2.ReplicationController:
        """As far as keeping min_available pods available allows, counting the new
        controller's pods that are not available yet as missing."""
        if _replicas(old) == 0:
            return old
        new_available = await self.available_pods(new, config.min_ready_seconds)
        all_pods = _replicas(old) + _replicas(new)
        new_unavailable = _replicas(new) - new_available
        decrement = all_pods - min_available - new_unavailable
        if decrement <= 0:
            return old
        target = max(_replicas(old) - decrement, 0)
        if _replicas(new) == desired and new_available == desired:
            target = 0
        self.emit(f"Scaling {old.metadata.name} down to {target}")
        return await self.scale_and_wait(old, target, config)

    async def available_pods(self, rc: core_pb2.ReplicationController, min_ready_seconds: int) -> int:
        """The controller's pods that are Ready (for min_ready_seconds) and not being deleted."""
        selector = str(labels.from_set(dict(rc.spec.selector)))
        pods = await self.client.list_all(PODS, self.namespace, label_selector=selector)
        now = time.time()
        return sum(
            1 for p in pods.items if isinstance(p, core_pb2.Pod) and is_available(p, min_ready_seconds, now)
        )

    async def scale_and_wait(
        self, rc: core_pb2.ReplicationController, replicas: int, config: UpdateConfig
    ) -> core_pb2.ReplicationController:
        """Scale through the scale subresource, then wait until the controller has observed it
        and reports that many pods (kubectl's ControllerHasDesiredReplicas)."""
        name = rc.metadata.name
        for attempt in range(5):
            try:
                await self.client.scale(RCS, name, replicas, self.namespace)
                break
            except ConflictError:
                if attempt == 4:
                    raise
        deadline = time.monotonic() + config.timeout
        while True:
            current = await self._get(name)
            if current.status.observed_generation >= current.metadata.generation and (
                current.status.replicas == _replicas(current)
            ):
                return current
            if time.monotonic() > deadline:
                raise CLIError(f'timed out waiting for "{name}" to be synced')
            await asyncio.sleep(config.poll_interval)

    # ------------------------------------------------------------------ target and cleanup

    async def get_or_create_target(
        self, controller: core_pb2.ReplicationController, source_id: str
    ) -> tuple[core_pb2.ReplicationController, bool]:
        """The new controller: an existing one must carry this update's source id (an
        interrupted run); otherwise it is created with 0 replicas and the desired count in
        an annotation."""
        try:
            existing = await self._get(controller.metadata.name)
        except NotFoundError:
            if _replicas(controller) <= 0:
                raise CLIError(
                    f"Invalid controller spec for {controller.metadata.name}; required: > 0 replicas, "
                    f"actual: {_replicas(controller)}"
                ) from None
            fresh = _copy(controller)
            fresh.metadata.annotations[DESIRED_REPLICAS] = str(_replicas(controller))
            fresh.metadata.annotations[SOURCE_ID] = source_id
            fresh.spec.replicas = 0
            return await self.client.create(fresh), False
        annotations = existing.metadata.annotations
        if annotations.get(SOURCE_ID) != source_id or DESIRED_REPLICAS not in annotations:
            shown = json.dumps(dict(annotations), sort_keys=True)
            raise CLIError(
                f"Missing/unexpected annotations for controller {controller.metadata.name}, "
                f"expected {source_id} : {shown}"
            )
        return existing, True

    async def cleanup(
        self, old: core_pb2.ReplicationController, new: core_pb2.ReplicationController, config: UpdateConfig
    ) -> None:
        def forget_update(rc: core_pb2.ReplicationController) -> None:
            rc.metadata.annotations.pop(SOURCE_ID, None)
            rc.metadata.annotations.pop(DESIRED_REPLICAS, None)

        new = await self._update(new.metadata.name, forget_update)
        new = await self.scale_and_wait(new, _replicas(new), config)
        if config.cleanup == DELETE:
            self.emit(f"Update succeeded. Deleting {old.metadata.name}")
            await self.client.delete(RCS, old.metadata.name, self.namespace)
        elif config.cleanup == RENAME:
            self.emit(f"Update succeeded. Deleting old controller: {old.metadata.name}")
            await self.client.delete(RCS, old.metadata.name, self.namespace)
            self.emit(f"Renaming {new.metadata.name} to {old.metadata.name}")
            await rename(self.client, new, old.metadata.name, config.poll_interval, config.timeout)

    # ------------------------------------------------------------------ helpers

    async def _get(self, name: str) -> core_pb2.ReplicationController:
        rc = await self.client.get(RCS, name, self.namespace)
        assert isinstance(rc, core_pb2.ReplicationController)
        return rc

    async def _update(
        self, name: str, change: Callable[[core_pb2.ReplicationController], None]
    ) -> core_pb2.ReplicationController:
        return await update_rc(self.client, self.namespace, name, change)


async def update_rc(
    client: Client, namespace: str, name: str, change: Callable[[core_pb2.ReplicationController], None]
) -> core_pb2.ReplicationController:
    def apply(obj: Message) -> None:
        assert isinstance(obj, core_pb2.ReplicationController)
        change(obj)

    updated = await update_with_retries(client, RCS, name, namespace, apply)
    assert isinstance(updated, core_pb2.ReplicationController)
    return updated


def _fresh_object(rc: core_pb2.ReplicationController, name: str) -> core_pb2.ReplicationController:
    """What a create may carry: name, namespace, labels, annotations and the spec."""
    fresh = core_pb2.ReplicationController()
    fresh.metadata.name = name
    fresh.metadata.namespace = rc.metadata.namespace
    fresh.metadata.labels.update(rc.metadata.labels)
    fresh.metadata.annotations.update(rc.metadata.annotations)
    fresh.spec.CopyFrom(rc.spec)
    return fresh


async def rename(
    client: Client, rc: core_pb2.ReplicationController, new_name: str, interval: float, timeout: float
) -> None:
    """Delete the controller orphaning its pods, wait until it is gone, and create it again
    under new_name: the same selector adopts the same pods, so none restarts."""
    old_name = rc.metadata.name
    with contextlib.suppress(NotFoundError):
        await client.delete(RCS, old_name, rc.metadata.namespace, propagation_policy="Orphan")
    deadline = time.monotonic() + timeout
    while True:
        try:
            await client.get(RCS, old_name, rc.metadata.namespace)
        except NotFoundError:
            break
        if time.monotonic() > deadline:
            raise CLIError("timed out waiting for the condition")
        await asyncio.sleep(interval)
    await client.create(_fresh_object(rc, new_name))


async def find_source_controller(client: Client, namespace: str, name: str) -> core_pb2.ReplicationController:
    """The controller an interrupted rename left behind: its source id names `name`."""
    listed = await client.list_all(RCS, namespace)
    for rc in listed.items:
        assert isinstance(rc, core_pb2.ReplicationController)
        if rc.metadata.annotations.get(SOURCE_ID, "").startswith(f"{name}:"):
            return rc
    raise CLIError(f"couldn't find a replication controller with source id == {namespace}/{name}")


# ---------------------------------------------------------------------- preparing the new controller


def object_hash(rc: core_pb2.ReplicationController) -> str:
    """kubectl's HashObject: adler32 of the encoded object, in hex."""
    encoded = json.dumps(codec.encode_object(rc), sort_keys=True, separators=(",", ":")).encode()
    return f"{zlib.adler32(encoded):x}"


def controller_from_image(
    old: core_pb2.ReplicationController,
    new_name: str,
    image: str,
    container: str,
    deployment_key: str,
    pull_policy: str,
) -> core_pb2.ReplicationController:
    """The old controller with one container's image changed, named new_name (or
    OLD-HASH), selecting and labelling its pods with deployment_key=HASH."""
    containers = old.spec.template.spec.containers
    index = 0
    if container:
        names = [c.name for c in containers]
        if container not in names:
            raise CLIError(f"container {container} not found in pod")
        index = names.index(container)
    if len(containers) > 1 and not container:
        raise CLIError("must specify container to update when updating a multi-container pod")
    if not containers:
        raise CLIError(f"pod has no containers! ({old.metadata.name})")
    new = _fresh_object(old, old.metadata.name)
    for annotation in (SOURCE_ID, DESIRED_REPLICAS, ORIGINAL_REPLICAS, NEXT_CONTROLLER):
        new.metadata.annotations.pop(annotation, None)
    new.spec.template.spec.containers[index].image = image
    if pull_policy:
        new.spec.template.spec.containers[index].image_pull_policy = pull_policy
    digest = object_hash(new)
    new.metadata.name = new_name or f"{old.metadata.name}-{digest}"
    new.spec.selector[deployment_key] = digest
    new.spec.template.metadata.labels[deployment_key] = digest
    return new


async def add_deployment_key(
    client: Client, namespace: str, old: core_pb2.ReplicationController, key: str, value: str
) -> core_pb2.ReplicationController:
    """Give the old controller (template, pods, then selector) a deployment key of its own so
    its pods and the new controller's never overlap; delete pods created meanwhile without
    it (kubectl's AddDeploymentKeyToReplicationController)."""
    name = old.metadata.name
    old = await update_rc(
        client, namespace, name, lambda rc: rc.spec.template.metadata.labels.update({key: value})
    )
    original_selector = dict(old.spec.selector)
    pods = await client.list_all(PODS, namespace, label_selector=str(labels.from_set(original_selector)))
    for pod in pods.items:

        def add_label(obj: Message) -> None:
            obj.metadata.labels[key] = value  # type: ignore[attr-defined]

        try:
            await update_with_retries(client, PODS, pod.metadata.name, namespace, add_label)  # type: ignore[attr-defined]
        except NotFoundError:
            continue
    old = await update_rc(client, namespace, name, lambda rc: rc.spec.selector.update({key: value}))
    leftovers = await client.list_all(PODS, namespace, label_selector=str(labels.from_set(original_selector)))
    for pod in leftovers.items:
        assert isinstance(pod, core_pb2.Pod)
        if pod.metadata.labels.get(key) != value:
            try:
                await client.delete(PODS, pod.metadata.name, namespace)
            except NotFoundError:
                continue
    return old


async def mark_next_controller(
    client: Client,
    namespace: str,
    old: core_pb2.ReplicationController,
    new_name: str,
    key: str,
    value: str,
) -> core_pb2.ReplicationController:
    """Record the new controller's name on the old one (so `--rollback` and a resumed run
    find it), adding the deployment key first if the old controller lacks it."""
    name = old.metadata.name
    if key not in old.spec.selector:
        old = await add_deployment_key(client, namespace, old, key, value)
    return await update_rc(
        client, namespace, name, lambda rc: rc.metadata.annotations.update({NEXT_CONTROLLER: new_name})
    )


def check_selectors(
    old: core_pb2.ReplicationController, new: core_pb2.ReplicationController, source: str
) -> None:
    """Every new pod must carry a selector value no old pod has, or the controllers would fight."""
    for key, value in old.spec.selector.items():
        if key in new.spec.selector and new.spec.selector[key] != value:
            return
    raise CLIError(
        f"{source} must specify a matching key with non-equal value in Selector for {old.metadata.name}"
    )


def abort(config: UpdateConfig, emit: Emit) -> None:
    """Reverse an update in progress: the controllers swap roles, the original comes back to
    its original size, and the partial new one is deleted at the end."""
    partial, original = config.new, config.old
    config.old, config.new = partial, original
    config.new.metadata.annotations[SOURCE_ID] = f"{partial.metadata.name}:{partial.metadata.uid}"
    # The count the update started from, recorded on the controller it replaced: the sizes
    # may have changed asymmetrically, so only this one is known to be good.
    size = original.metadata.annotations.get(ORIGINAL_REPLICAS)
    if size is None:
        raise CLIError(f'couldn\'t find original replica count of "{original.metadata.name}"')
    emit(f'Setting "{config.new.metadata.name}" replicas to {size}')
    config.new.metadata.annotations[DESIRED_REPLICAS] = size
    config.cleanup = DELETE
