"""What the user types to name resources, resolved the way kubectl resolves it: plural,
singular, short name and group-qualified forms (`deployments.apps`, `deployment.v1.apps`),
`TYPE NAME...`, `TYPE/NAME...`, `TYPE1,TYPE2` and the `all` category."""

from __future__ import annotations

from services.cli.errors import CLIError
from services.machinery.kinds import REGISTRY, KindInfo, UnknownKindError

# kubectl's "all" category, in the order `kubectl get all` prints it.
ALL_CATEGORY = (
    "pods",
    "replicationcontrollers",
    "services",
    "daemonsets",
    "deployments",
    "replicasets",
    "statefulsets",
    "horizontalpodautoscalers",
    "cronjobs",
    "jobs",
)

Ref = tuple[KindInfo, str]


def _unknown(token: str) -> CLIError:
    return CLIError(f'the server doesn\'t have a resource type "{token}"')


def resolve(token: str) -> KindInfo:
    """One resource type as typed: `pods`, `pod`, `po`, `Pod`, `deployments.apps`,
    `deployment.apps`, `deployments.v1.apps`."""
    if not token:
        raise _unknown(token)
    try:
        return REGISTRY.by_name(token)
    except UnknownKindError:
        pass
    name, _, qualifier = token.partition(".")
    if not qualifier:
        raise _unknown(token)
    try:
        info = REGISTRY.by_name(name)
    except UnknownKindError:
        raise _unknown(token) from None
    if qualifier.lower() in (info.group, f"{info.version}.{info.group}".rstrip(".")):
        return info
    raise _unknown(token)


def resolve_types(token: str) -> list[KindInfo]:
    """A comma-separated list of types; `all` expands to kubectl's "all" category."""
    kinds: list[KindInfo] = []
    for part in token.split(","):
        expanded = [resolve(p) for p in ALL_CATEGORY] if part.lower() == "all" else [resolve(part)]
        kinds.extend(k for k in expanded if k not in kinds)
    return kinds


def parse_refs(args: list[str], *, require_names: bool = False) -> list[Ref]:
    """Resource arguments to (kind, name) pairs; name "" means every object of that kind.

    Accepts `TYPE`, `TYPE1,TYPE2`, `TYPE NAME...`, `TYPE1,TYPE2 NAME...` and
    `TYPE/NAME...`; mixing the slash form with a bare type is refused as kubectl does.
    With require_names, a bare type is refused (commands that act on named objects).
    """
    if not args:
        raise CLIError("you must specify the type of resource to get")
    if any("/" in a for a in args):
        refs: list[Ref] = []
        for arg in args:
            kind, slash, name = arg.partition("/")
            if not slash:
                raise CLIError(
                    "there is no need to specify a resource type as a separate argument when passing "
                    "arguments in resource/name form (e.g. 'pinctl get resource/<resource_name>' "
                    "instead of 'pinctl get resource resource/<resource_name>')"
                )
            if not name:
                raise CLIError(
                    f'arguments in resource/name form must have a single resource and name: "{arg}"'
                )
            refs.append((resolve(kind), name))
        return refs
    kinds = resolve_types(args[0])
    names = args[1:]
    if not names:
        if require_names:
            raise CLIError("resource(s) were provided, but no name was specified")
        return [(k, "") for k in kinds]
    return [(k, n) for k in kinds for n in names]
