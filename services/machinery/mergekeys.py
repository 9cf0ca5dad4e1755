"""Strategic merge: which lists merge item by item and by which key (Kubernetes'
`patchMergeKey` tags), shared by the apiserver that applies strategic merge patches and the
CLI that computes them (`pinctl apply`)."""

from __future__ import annotations

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
}
# Lists of scalars that merge as sets instead of being replaced.
MERGED_PRIMITIVE_LISTS = ("finalizers",)


def merge_key(path: tuple[str, ...], field: str) -> str | None:
    """The merge key of the list `field` found under `path` (JSON field names), or None for a
    list that a patch replaces whole."""
    if field == "ports":
        return "containerPort" if any(p in ("containers", "initContainers") for p in path) else "port"
    if field == "addresses" and path[-1:] == ("status",):
        return "type"
    return MERGE_KEYS.get(field)
