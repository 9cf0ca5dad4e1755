"""`pinctl config ...`: read and edit the client configuration file (the one --kubeconfig,
$PINCTL_CONFIG, $KUBECONFIG or the default paths name), with kubectl's subcommands and
messages. None of them contacts the server."""

from __future__ import annotations

import argparse
import base64
from pathlib import Path

from services.cli import printers
from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.kubeconfig import KubeConfig, flattened, minified, redacted


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("config", help="view or edit the client configuration file")
    verbs = parser.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")

    view = verbs.add_parser("view", help="print the configuration (keys and tokens redacted)")
    view.add_argument("--raw", action="store_true", help="keys, certificates and tokens as they are")
    view.add_argument("--minify", action="store_true", help="only what the current context uses")
    view.add_argument("--flatten", action="store_true", help="embed certificate and key files")
    view.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    view.set_defaults(handler=_view)

    contexts = verbs.add_parser("get-contexts", help="list the contexts")
    contexts.add_argument("name", nargs="?", help="only this context")
    contexts.add_argument("-o", "--output", choices=("name",), help="only the names")
    contexts.add_argument("--no-headers", action="store_true")
    contexts.set_defaults(handler=_get_contexts)
    for section in ("clusters", "users"):
        listing = verbs.add_parser(f"get-{section}", help=f"list the {section}")
        listing.set_defaults(handler=_get_names, section=section)

    verbs.add_parser("current-context", help="print the current context").set_defaults(handler=_current)
    use = verbs.add_parser("use-context", aliases=["use"], help="make a context the current one")
    use.add_argument("name")
    use.set_defaults(handler=_use)

    set_context = verbs.add_parser("set-context", help="create or change a context")
    set_context.add_argument("name", nargs="?", default="")
    set_context.add_argument("--current", action="store_true", help="change the current context")
    for flag in ("cluster", "user", "namespace"):
        set_context.add_argument(f"--{flag}", default=None, help=f"the context's {flag}")
    set_context.set_defaults(handler=_set_context)

    cluster = verbs.add_parser("set-cluster", help="create or change a cluster entry")
    cluster.add_argument("name")
    cluster.add_argument("--server", default=None, help="HOST:PORT of the apiserver")
    cluster.add_argument("--certificate-authority", default=None, help="CA certificate file")
    cluster.add_argument("--embed-certs", action="store_true", help="store file contents, not paths")
    cluster.add_argument(
        "--insecure-plaintext",
        choices=("true", "false"),
        default=None,
        help="plaintext gRPC (--insecure apiserver)",
    )
    cluster.set_defaults(handler=_set_cluster)

    credentials = verbs.add_parser("set-credentials", help="create or change a user entry")
    credentials.add_argument("name")
    credentials.add_argument("--client-certificate", default=None, help="client certificate file")
    credentials.add_argument("--client-key", default=None, help="client key file")
    credentials.add_argument("--token", default=None, help="bearer token")
    credentials.add_argument("--embed-certs", action="store_true", help="store file contents, not paths")
    credentials.set_defaults(handler=_set_credentials)

    for section, singular in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
        delete = verbs.add_parser(f"delete-{singular}", help=f"remove a {singular} entry")
        delete.add_argument("name")
        delete.set_defaults(handler=_delete, section=section, singular=singular)

    rename = verbs.add_parser("rename-context", help="rename a context")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.set_defaults(handler=_rename)


def _config(ctx: CommandContext, *, must_exist: bool = True) -> KubeConfig:
    return KubeConfig.load(ctx.config_file, must_exist=must_exist)


async def _view(ctx: CommandContext, args: argparse.Namespace) -> int:
    config = KubeConfig.load(ctx.config_file)
    document = config.document
    if args.minify:
        document = minified(document, args.context or config.current_context)
    if args.flatten:
        try:
            document = flattened(document, config.path.parent)
        except OSError as exc:
            raise CLIError(f"cannot embed a file: {exc}") from None
    if not args.raw:
        document = redacted(document)
    ctx.out.write(printers.dump(document, args.output))
    return 0


async def _get_contexts(ctx: CommandContext, args: argparse.Namespace) -> int:
    config = KubeConfig.load(ctx.config_file)
    entries = config.entries("contexts")
    if args.name:
        entries = [e for e in entries if e.get("name") == args.name]
        if not entries:
            raise CLIError(f"context {args.name} not found")
    if args.output == "name":
        for entry in entries:
            ctx.print(str(entry.get("name")))
        return 0
    rows = [] if args.no_headers else [["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]]
    for entry in entries:
        body = entry.get("context") or {}
        rows.append(
            [
                "*" if entry.get("name") == config.current_context else "",
                str(entry.get("name", "")),
                str(body.get("cluster", "")),
                str(body.get("user", "")),
                str(body.get("namespace", "")),
            ]
        )
    ctx.out.write(printers.render_table(rows))
    return 0


async def _get_names(ctx: CommandContext, args: argparse.Namespace) -> int:
    ctx.print("NAME")
    for entry in KubeConfig.load(ctx.config_file).entries(args.section):
        ctx.print(str(entry.get("name", "")))
    return 0


async def _current(ctx: CommandContext, args: argparse.Namespace) -> int:
    current = _config(ctx).current_context
    if not current:
        raise CLIError("current-context is not set")
    ctx.print(current)
    return 0


async def _use(ctx: CommandContext, args: argparse.Namespace) -> int:
    config = _config(ctx)
    if config.find("contexts", args.name) is None:
        raise CLIError(f'no context exists with the name: "{args.name}"')
    config.current_context = args.name
    config.save()
    ctx.print(f'Switched to context "{args.name}".')
    return 0


async def _set_context(ctx: CommandContext, args: argparse.Namespace) -> int:
    config = _config(ctx, must_exist=False)
    if args.current and args.name:
        raise CLIError("you cannot specify both a context name and --current", EXIT_USAGE)
    name = config.current_context if args.current else args.name
    if not name:
        raise CLIError("you must specify a non-empty context name or --current", EXIT_USAGE)
    body, created = config.upsert("contexts", name)
    for flag in ("cluster", "user", "namespace"):
        value = getattr(args, flag)
        if value is not None:
            body[flag] = value
    config.save()
    ctx.print(f'Context "{name}" {"created" if created else "modified"}.')
    return 0


def _file_or_data(body: dict[str, object], key: str, path: str, embed: bool) -> None:
    body.pop(key, None)
    body.pop(f"{key}-data", None)
    if embed:
        try:
            body[f"{key}-data"] = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        except OSError as exc:
            raise CLIError(f"could not read {key} data from {path}: {exc}") from None
    else:
        body[key] = str(Path(path).resolve())


async def _set_cluster(ctx: CommandContext, args: argparse.Namespace) -> int:
    config = _config(ctx, must_exist=False)
    body, _ = config.upsert("clusters", args.name)
    if args.server is not None:
        body["server"] = args.server
    if args.certificate_authority is not None:
        _file_or_data(body, "certificate-authority", args.certificate_authority, args.embed_certs)
    if args.insecure_plaintext is not None:
        body["insecure-plaintext"] = args.insecure_plaintext == "true"
    config.save()
    ctx.print(f'Cluster "{args.name}" set.')
    return 0


async def _set_credentials(ctx: CommandContext, args: argparse.Namespace) -> int:
    config = _config(ctx, must_exist=False)
    body, _ = config.upsert("users", args.name)
    if args.client_certificate is not None:
        _file_or_data(body, "client-certificate", args.client_certificate, args.embed_certs)
    if args.client_key is not None:
        _file_or_data(body, "client-key", args.client_key, args.embed_certs)
    if args.token is not None:
        body["token"] = args.token
    config.save()
    ctx.print(f'User "{args.name}" set.')
    return 0


async def _delete(ctx: CommandContext, args: argparse.Namespace) -> int:
    config = _config(ctx)
    if not config.remove(args.section, args.name):
        raise CLIError(f"cannot delete {args.singular} {args.name}, not in {config.path}")
    if args.section == "contexts" and config.current_context == args.name:
        ctx.warn(
            'warning: this removed your active context, use "pinctl config use-context" to select a '
            "different one"
        )
    config.save()
    ctx.print(f"deleted {args.singular} {args.name} from {config.path}")
    return 0


async def _rename(ctx: CommandContext, args: argparse.Namespace) -> int:
    config = _config(ctx)
    if config.find("contexts", args.old) is None:
        raise CLIError(f"cannot rename the context {args.old!r}, it's not in {config.path}")
    if config.find("contexts", args.new) is not None:
        raise CLIError(
            f"cannot rename the context {args.old!r}, the context {args.new!r} already exists in "
            f"{config.path}"
        )
    for entry in config.entries("contexts"):
        if entry.get("name") == args.old:
            entry["name"] = args.new
    if config.current_context == args.old:
        config.current_context = args.new
    config.save()
    ctx.print(f'Context "{args.old}" renamed to "{args.new}".')
    return 0
