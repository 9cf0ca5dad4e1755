"""`set image`: change container images in a pod or in a workload's pod template; `*`
names every container. Unknown containers are kubectl's `unable to find container named`."""

from __future__ import annotations

from google.protobuf.message import Message

from services.cli.errors import CLIError
from services.cli.ops.objects import pod_spec_of, update_with_retries
from services.client.client import Client
from services.machinery.kinds import KindInfo


def parse_images(pairs: list[str]) -> dict[str, str]:
    """`container=image` pairs (kubectl's ParsePairs without removals)."""
    images: dict[str, str] = {}
    invalid = []
    for pair in pairs:
        name, equals, image = pair.partition("=")
        if equals and name:
            images[name] = image
        else:
            invalid.append(pair)
    if invalid:
        raise CLIError(f"invalid image format: {', '.join(invalid)}")
    if not images:
        raise CLIError("at least one image update is required")
    return images


def set_images(obj: Message, images: dict[str, str]) -> bool:
    """Apply the images to the object in place; True when anything changed."""
    spec = pod_spec_of(obj)
    if spec is None:
        raise CLIError(f"cannot set images on a {type(obj).__name__}: it has no pod template")
    changed = False
    for name, image in images.items():
        found = False
        for container in [*spec.init_containers, *spec.containers]:
            if name in ("*", container.name):
                found = True
                if container.image != image:
                    container.image = image
                    changed = True
        if not found:
            raise CLIError(f'unable to find container named "{name}"')
    return changed


async def update_images(
    client: Client,
    info: KindInfo,
    name: str,
    namespace: str,
    images: dict[str, str],
    *,
    dry_run: bool = False,
) -> Message:
    """Write the images unless the object already runs them (then nothing is sent)."""
    current = await client.get(info, name, namespace)
    if not set_images(current, images):
        return current

    def apply(obj: Message) -> None:
        set_images(obj, images)

    return await update_with_retries(client, info, name, namespace, apply, dry_run=dry_run)
