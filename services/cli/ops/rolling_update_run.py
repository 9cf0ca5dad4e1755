"""The `rolling-update` command's flow (kubectl's rollingupdate.go): find the old controller,
build the new one from a manifest or from `--image`, check that the two select disjoint pods,
then hand both to the RollingUpdater; `--rollback` reverses an update in progress."""

from __future__ import annotations

from dataclasses import dataclass

from pinnace.api.core.v1 import core_pb2
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.ops import rolling_update as ru
from services.client.client import Client
from services.client.errors import NotFoundError


@dataclass
class Request:
    old_name: str
    new_name: str = ""
    # From -f: the decoded, defaulted controller, the file it came from, and whether the file
    # left spec.replicas out (the new controller then takes the old one's count).
    new_rc: core_pb2.ReplicationController | None = None
    source: str = ""
    replicas_defaulted: bool = False
    image: str = ""
    container: str = ""
    deployment_key: str = "deployment"
    pull_policy: str = ""
    rollback: bool = False
    update_period: float = 60.0
    poll_interval: float = 3.0
    timeout: float = 300.0
    dry_run: bool = False

    @property
    def keep_old_name(self) -> bool:
        """With --image or --rollback and no NEW_NAME, the result keeps the old name."""
        return (bool(self.image) or self.rollback) and not self.new_name


def validate(request: Request, filenames: int) -> None:
    """kubectl's validateArguments: the usage errors, all at once."""
    problems = []
    if not request.deployment_key:
        problems.append("--deployment-label-key can not be empty")
    if filenames > 1:
        problems.append("May only specify a single filename for new controller")
    if not request.rollback:
        if filenames == 0 and not request.image:
            problems.append("Must specify --filename or --image for new controller")
        elif filenames and request.image:
            problems.append("--filename and --image can not both be specified")
    elif filenames or request.image:
        problems.append("Don't specify --filename or --image on rollback")
    if not request.old_name:
        problems.append("Must specify the controller to update")
    if problems:
        raise CLIError(problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]", EXIT_USAGE)


async def _load_next(client: Client, namespace: str, name: str) -> core_pb2.ReplicationController | None:
    if not name:
        return None
    try:
        rc = await client.get(ru.RCS, name, namespace)
    except NotFoundError:
        return None
    assert isinstance(rc, core_pb2.ReplicationController)
    return rc


def _next_name(request: Request, old: core_pb2.ReplicationController) -> str:
    return request.new_name or old.metadata.annotations.get(ru.NEXT_CONTROLLER, "")


async def _from_image(
    client: Client, namespace: str, request: Request, old: core_pb2.ReplicationController, emit: ru.Emit
) -> tuple[core_pb2.ReplicationController, core_pb2.ReplicationController]:
    new_name = _next_name(request, old)
    new = await _load_next(client, namespace, new_name)
    if new is not None:
        in_progress = new.spec.template.spec.containers[0].image
        if in_progress != request.image:
            raise CLIError(
                f"Found existing in-progress update to image ({in_progress}).\n"
                f"Either continue in-progress update with --image={in_progress} or rollback with --rollback"
            )
        emit(f"Found existing update in progress ({new.metadata.name}), resuming.")
    else:
        pull_policy = ""
        if old.spec.template.spec.containers and old.spec.template.spec.containers[0].image == request.image:
            if not request.pull_policy:
                raise CLIError(
                    "--image-pull-policy (Always|Never|IfNotPresent) must be provided when --image is "
                    "the same as existing container image"
                )
            pull_policy = request.pull_policy
        new = ru.controller_from_image(
            old, new_name, request.image, request.container, request.deployment_key, pull_policy
        )
    # A suffix keeps the old hash distinct when the image did not change.
    old_hash = ru.object_hash(old) + "-orig"
    old = await ru.mark_next_controller(
        client, namespace, old, new.metadata.name, request.deployment_key, old_hash
    )
    return old, new


async def run(client: Client, namespace: str, request: Request, emit: ru.Emit) -> str:
    """Perform the update; return the operation kubectl prints after the controller's name."""
    try:
        old = await client.get(ru.RCS, request.old_name, namespace)
    except NotFoundError:
        if not request.image or not request.keep_old_name:
            raise
        # Interrupted during the final rename: finish it.
        leftover = await ru.find_source_controller(client, namespace, request.old_name)
        await ru.rename(client, leftover, request.old_name, request.poll_interval, request.timeout)
        return "rolling updated"
    assert isinstance(old, core_pb2.ReplicationController)
    source = request.source
    new: core_pb2.ReplicationController | None = request.new_rc
    if new is not None and new.metadata.namespace and new.metadata.namespace != namespace:
        raise CLIError(
            f'the namespace from the provided object "{new.metadata.namespace}" does not match the '
            f"namespace \"{namespace}\". You must pass '--namespace={new.metadata.namespace}' to perform "
            "this operation."
        )
    if request.image:
        old, new = await _from_image(client, namespace, request, old, emit)
    if request.rollback:
        new_name = _next_name(request, old)
        new = await _load_next(client, namespace, new_name)
        if new is None:
            raise CLIError(f"Could not find {new_name} to rollback.")
    assert new is not None
    if request.old_name == new.metadata.name:
        raise CLIError(
            f"{source} cannot have the same name as the existing ReplicationController {request.old_name}"
        )
    ru.check_selectors(old, new, source)
    if request.replicas_defaulted:
        new.spec.replicas = old.spec.replicas
    if request.dry_run:
        emit(f"Rolling from:\n{old.metadata.name}\nTo:\n{new.metadata.name}")
        return ""
    config = ru.UpdateConfig(
        old=old,
        new=new,
        update_period=request.update_period,
        poll_interval=request.poll_interval,
        timeout=request.timeout,
        # A new pod counts as available once Ready for the new controller's minReadySeconds.
        min_ready_seconds=new.spec.min_ready_seconds,
        cleanup=ru.RENAME if request.keep_old_name else ru.DELETE,
    )
    if request.rollback:
        ru.abort(config, emit)
        wanted = {k: config.new.metadata.annotations[k] for k in (ru.SOURCE_ID, ru.DESIRED_REPLICAS)}
        config.new = await ru.update_rc(
            client, namespace, config.new.metadata.name, lambda rc: rc.metadata.annotations.update(wanted)
        )
    await ru.RollingUpdater(client, namespace, emit).update(config)
    if request.keep_old_name or request.rollback:
        # The old name stands: renamed onto the new pods, or the original restored.
        return "rolling updated"
    return f'rolling updated to "{new.metadata.name}"'
