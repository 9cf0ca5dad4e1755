"""Reading the objects resource arguments name: a get per named object, a list per bare type
(with -l/--field-selector, in one namespace or all), as get, describe and delete need them.
Objects that are missing are reported, not fatal, so the others still print (kubectl's way)."""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import Message

from services.cli.context import CommandContext
from services.cli.errors import CLIError
from services.cli.resources import Ref
from services.client.errors import APIStatusError, NotFoundError
from services.machinery.kinds import KindInfo


@dataclass
class Group:
    """The objects of one kind, in the order the user named them or the server listed them."""

    info: KindInfo
    objects: list[Message] = field(default_factory=list)
    named: bool = False
    resource_version: str = ""


@dataclass
class Fetched:
    groups: list[Group]
    errors: list[APIStatusError]

    @property
    def objects(self) -> list[Message]:
        return [o for g in self.groups for o in g.objects]


def namespace_for(ctx: CommandContext, info: KindInfo) -> str:
    """The namespace a request about `info` carries: "" for cluster-scoped kinds and -A."""
    if not info.namespaced or ctx.all_namespaces:
        return ""
    return ctx.namespace


def check_selectors(refs: list[Ref], label_selector: str, field_selector: str, all_namespaces: bool) -> None:
    named = any(name for _, name in refs)
    if named and (label_selector or field_selector):
        raise CLIError("name cannot be provided when a selector is specified")
    if named and all_namespaces:
        raise CLIError("a resource cannot be retrieved by name across all namespaces")


async def fetch(
    ctx: CommandContext,
    refs: list[Ref],
    *,
    label_selector: str = "",
    field_selector: str = "",
    ignore_not_found: bool = False,
) -> Fetched:
    check_selectors(refs, label_selector, field_selector, ctx.all_namespaces)
    client = ctx.client()
    groups: list[Group] = []
    errors: list[APIStatusError] = []
    for info, name in refs:
        group = next((g for g in groups if g.info == info and g.named == bool(name)), None)
        if group is None:
            group = Group(info, named=bool(name))
            groups.append(group)
        if name:
            try:
                group.objects.append(await client.get(info, name, namespace_for(ctx, info)))
            except NotFoundError as exc:
                if not ignore_not_found:
                    errors.append(exc)
            continue
        result = await client.list_all(
            info, namespace_for(ctx, info), label_selector=label_selector, field_selector=field_selector
        )
        group.objects.extend(result.items)
        group.resource_version = result.resource_version
    return Fetched(groups, errors)


def no_resources_message(ctx: CommandContext, kinds: list[KindInfo]) -> str:
    """kubectl's `No resources found in default namespace.` (or without the namespace)."""
    if ctx.all_namespaces or not any(k.namespaced for k in kinds):
        return "No resources found"
    return f"No resources found in {ctx.namespace} namespace."
