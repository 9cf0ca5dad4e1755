"""`label` and `annotate`: parse `key=value` / `key-` updates as kubectl does, check them,
and apply them to one object's labels or annotations with kubectl's overwrite rules."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message

from services.cli.errors import CLIError
from services.cli.ops.objects import CONFLICT_RETRIES, meta_of
from services.client.client import Client
from services.client.errors import ConflictError
from services.machinery import formats
from services.machinery.kinds import KindInfo

CHANGE_CAUSE = "kubernetes.io/change-cause"


@dataclass
class Updates:
    """New values and keys to remove; `what` is "label" or "annotation"."""

    what: str
    new: dict[str, str] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)


def split_arguments(args: list[str], what: str) -> tuple[list[str], list[str]]:
    """Resource arguments first, then updates (GetResourcesAndPairs): a resource after an
    update is an error."""
    resources: list[str] = []
    pairs: list[str] = []
    for arg in args:
        is_pair = ("=" in arg and not arg.startswith("=")) or (arg.endswith("-") and arg != "-")
        if is_pair:
            pairs.append(arg)
        elif pairs:
            raise CLIError(f"all resources must be specified before {what} changes: {arg}")
        else:
            resources.append(arg)
    return resources, pairs


def parse_labels(pairs: list[str]) -> Updates:
    updates = Updates("label")
    for spec in pairs:
        if "=" in spec:
            parts = spec.split("=")
            if len(parts) != 2:
                raise CLIError(f"invalid label spec: {spec}")
            problems = formats.label_value(parts[1])
            if problems:
                raise CLIError(f'invalid label value: "{spec}": {";".join(problems)}')
            updates.new[parts[0]] = parts[1]
        elif spec.endswith("-"):
            updates.remove.append(spec[:-1])
        else:
            raise CLIError(f"unknown label spec: {spec}")
    for key in updates.new:
        problems = formats.qualified_name(key)
        if problems:
            raise CLIError(f"invalid label spec: {key}, {';'.join(problems)}")
    _refuse_both(updates)
    return updates


def parse_annotations(pairs: list[str]) -> Updates:
    updates = Updates("annotation")
    invalid = []
    for spec in pairs:
        if "=" in spec and not spec.startswith("="):
            key, _, value = spec.partition("=")
            updates.new[key] = value
        elif spec.endswith("-") and spec != "-":
            updates.remove.append(spec[:-1])
        else:
            invalid.append(spec)
    if invalid:
        raise CLIError(f"invalid annotation format: {', '.join(invalid)}")
    for key in updates.new:
        problems = formats.qualified_name(key.lower())
        if problems:
            raise CLIError(f"invalid annotation key: {key}, {';'.join(problems)}")
    _refuse_both(updates)
    return updates


def _refuse_both(updates: Updates) -> None:
    thing = "a label" if updates.what == "label" else "an annotation"
    for key in updates.remove:
        if key in updates.new:
            raise CLIError(f"can not both modify and remove {thing} in the same command")


def _overwrite_errors(current: MutableMapping[str, str], updates: Updates) -> list[str]:
    problems = []
    for key, value in sorted(updates.new.items()):
        if updates.what == "annotation" and key == CHANGE_CAUSE:
            continue  # the change cause is always overwritten
        if key in current and current[key] != value:
            problems.append(f"'{key}' already has a value ({current[key]})")
    return problems


def check_overwrite(current: MutableMapping[str, str], updates: Updates) -> None:
    problems = _overwrite_errors(current, updates)
    if not problems:
        return
    if updates.what == "label":
        messages = [f"{problem}, and --overwrite is false" for problem in problems]
        raise CLIError(messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]")
    raise CLIError(
        "--overwrite is false but found the following declared annotation(s): " + "".join(problems)
    )


@dataclass
class Outcome:
    operation: str  # labeled, unlabeled, not labeled, annotated
    missing: list[str]  # keys asked to be removed that the object did not have


def _operation(updates: Updates, changed: bool) -> str:
    if updates.what == "annotation":
        return "annotated"
    if not changed:
        return "not labeled"
    return "labeled" if updates.new else "unlabeled"


async def apply(
    client: Client,
    info: KindInfo,
    name: str,
    namespace: str,
    updates: Updates,
    *,
    overwrite: bool,
    resource_version: str = "",
    dry_run: bool = False,
    local: bool = False,
) -> tuple[Message, Outcome]:
    """Read, check, change and write one object's labels or annotations, retrying conflicts.
    With resource_version the change applies only to that version of the object (kubectl's
    --resource-version precondition): a mismatch is a conflict, never retried. `local`
    (--dry-run=client) returns the changed object without writing it; `dry_run` has the
    server check the write without keeping it."""
    attempts = 0
    while True:
        current = await client.get(info, name, namespace)
        meta = meta_of(current)
        if resource_version and meta.resource_version != resource_version:
            raise ConflictError(
                f'Operation cannot be fulfilled on {info.resource} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                grpc.StatusCode.ABORTED,
            )
        target = meta.labels if updates.what == "label" else meta.annotations
        if not overwrite:
            check_overwrite(target, updates)
        before = dict(target)
        missing = [key for key in updates.remove if key not in target]
        for key in updates.remove:
            target.pop(key, None)
        target.update(updates.new)
        changed = dict(target) != before
        outcome = Outcome(_operation(updates, changed), missing)
        if not changed or local:
            return current, outcome
        try:
            return await client.update(current, dry_run=dry_run), outcome
        except ConflictError:
            attempts += 1
            if resource_version or attempts >= CONFLICT_RETRIES:
                raise
