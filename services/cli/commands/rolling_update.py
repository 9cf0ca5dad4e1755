"""`pinctl rolling-update OLD (-f NEW_RC_FILE | [NEW_NAME] --image=IMAGE) [--rollback]`: the
client-side rolling update of a ReplicationController (services/cli/ops/rolling_update.py),
printing kubectl's progress lines."""

from __future__ import annotations

import argparse

from pinnace.api.core.v1 import core_pb2
from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import CLIError
from services.cli.ops import rolling_update_run as flow
from services.cli.workload_cli import add_dry_run, duration, kubectl_style
from services.machinery.codec import ManifestError, decode_manifests
from services.machinery.manifests import ManifestSourceError, load, read_sources


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "rolling-update",
        help="replace a replication controller's pods one at a time with a new controller's",
    )
    parser.add_argument("old", nargs="?", default="", metavar="OLD_CONTROLLER_NAME")
    parser.add_argument("new", nargs="?", default="", metavar="NEW_CONTROLLER_NAME")
    parser.add_argument(
        "-f", "--filename", action="append", default=[], help="the new replication controller's manifest"
    )
    parser.add_argument("--image", default="", help="the new image (instead of -f); must differ from the old")
    parser.add_argument("--container", default="", help="with --image: the container to update")
    parser.add_argument(
        "--deployment-label-key",
        default="deployment",
        help="with --image: the label that tells the two controllers' pods apart",
    )
    parser.add_argument(
        "--image-pull-policy", default="", help="with --image: required when the image is the same"
    )
    parser.add_argument("--rollback", action="store_true", help="abort and reverse an update in progress")
    parser.add_argument("--update-period", type=duration, default=60.0, help="wait between pod updates (1m)")
    parser.add_argument(
        "--poll-interval", type=duration, default=3.0, help="wait between status checks after a scale (3s)"
    )
    parser.add_argument(
        "--timeout", type=duration, default=300.0, help="give up after this long without progress (5m)"
    )
    flags.add_namespace(parser)
    add_dry_run(parser)
    kubectl_style(parser)
    parser.set_defaults(handler=run)


def load_controller(filename: str, namespace: str) -> tuple[core_pb2.ReplicationController, bool]:
    """The one ReplicationController of the file, defaulted and validated, and whether the file
    left spec.replicas out."""
    try:
        sources = read_sources([filename], recursive=False)
        if len(sources) != 1:
            raise CLIError(f"{filename} must name a single file")
        try:
            raw = decode_manifests(sources[0].text)
        except ManifestError:
            raw = []  # load() reports the problem, naming the file
        items = load(sources[0], default_namespace=namespace)
    except ManifestSourceError as exc:
        raise CLIError(str(exc)) from None
    if len(items) > 1:
        raise CLIError(f"{filename} specifies multiple items")
    if not items:
        raise CLIError(f"please make sure {filename} exists and is not empty")
    item = items[0]
    if not isinstance(item.obj, core_pb2.ReplicationController):
        raise CLIError(
            f"{filename} contains a {item.info.api_version}, Kind={item.info.kind} "
            "not a ReplicationController"
        )
    defaulted = (
        bool(raw)
        and isinstance(raw[0].obj, core_pb2.ReplicationController)
        and not (raw[0].obj.spec.HasField("replicas"))
    )
    return item.obj, defaulted


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    request = flow.Request(
        old_name=args.old,
        new_name=args.new,
        image=args.image,
        container=args.container,
        deployment_key=args.deployment_label_key,
        pull_policy=args.image_pull_policy,
        rollback=args.rollback,
        update_period=args.update_period,
        poll_interval=args.poll_interval,
        timeout=args.timeout,
        dry_run=args.dry_run != "none",
    )
    flow.validate(request, len(args.filename))
    if args.filename:
        request.source = args.filename[0]
        request.new_rc, request.replicas_defaulted = load_controller(args.filename[0], ctx.namespace)
    operation = await flow.run(ctx.client(), ctx.namespace, request, ctx.print)
    if operation:
        ctx.print(f"replicationcontroller/{request.old_name} {operation}")
    return 0
