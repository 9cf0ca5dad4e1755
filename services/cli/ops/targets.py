"""The objects a workload command acts on, from what the user typed: `TYPE NAME...`,
`TYPE/NAME...`, a bare TYPE with -l/--all, or -f manifests (their kind and name only)."""

from __future__ import annotations

from dataclasses import dataclass

from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.ops.objects import meta_of
from services.cli.resources import parse_refs
from services.client.client import Client
from services.machinery.kinds import KindInfo
from services.machinery.manifests import ManifestSourceError, load, read_sources


@dataclass(frozen=True)
class Target:
    info: KindInfo
    name: str
    namespace: str  # "" for cluster-scoped kinds


def from_files(filenames: list[str], namespace: str, *, recursive: bool = False) -> list[Target]:
    try:
        sources = read_sources(filenames, recursive=recursive)
        decoded = [item for source in sources for item in load(source, default_namespace=namespace)]
    except ManifestSourceError as exc:
        raise CLIError(str(exc)) from None
    return [
        Target(item.info, meta_of(item.obj).name, meta_of(item.obj).namespace if item.info.namespaced else "")
        for item in decoded
    ]


async def resolve(
    client: Client,
    args: list[str],
    namespace: str,
    *,
    selector: str = "",
    select_all: bool = False,
    filenames: list[str] | None = None,
    recursive: bool = False,
) -> list[Target]:
    """Named objects are taken as named (a missing one fails later, when it is read); a bare
    type needs -l or --all and is listed."""
    if filenames:
        if args:
            raise CLIError("Can't specify both filenames and resource arguments", EXIT_USAGE)
        return from_files(filenames, namespace, recursive=recursive)
    if not args:
        raise CLIError("You must provide one or more resources by argument or filename.", EXIT_USAGE)
    refs = parse_refs(args)
    named = any(name for _, name in refs)
    if named and (selector or select_all):
        raise CLIError("name cannot be provided when a selector is specified", EXIT_USAGE)
    targets = []
    for info, name in refs:
        scope = namespace if info.namespaced else ""
        if name:
            targets.append(Target(info, name, scope))
            continue
        if not selector and not select_all:
            raise CLIError("resource(s) were provided, but no name was specified", EXIT_USAGE)
        listed = await client.list_all(info, scope, label_selector=selector)
        targets.extend(Target(info, meta_of(obj).name, scope) for obj in listed.items)
    return targets
