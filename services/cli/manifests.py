"""Objects named by -f: every source read and checked before any request is sent, so an invalid
document anywhere changes nothing (kubectl's builder does the same). The objects are kept as
written (not defaulted): that is what apply records as the last-applied configuration."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from services.cli.errors import CLIError
from services.machinery.codec import ManifestError, decode_manifests
from services.machinery.kinds import KindInfo
from services.machinery.manifests import ManifestSourceError, load, read_sources


@dataclass(frozen=True)
class Item:
    source: str
    info: KindInfo
    obj: Message

    @property
    def name(self) -> str:
        return str(self.obj.metadata.name)  # type: ignore[attr-defined]

    @property
    def namespace(self) -> str:
        return str(self.obj.metadata.namespace)  # type: ignore[attr-defined]


def load_items(
    paths: list[str],
    *,
    recursive: bool,
    namespace: str,
    explicit_namespace: bool,
    validate: bool = True,
    verb: str = "create",
) -> list[Item]:
    """Every object of the files, folders and stdin `paths` name; CLIError on the first bad one.

    Namespaced objects without a namespace get `namespace`; one whose namespace differs from an
    explicit -n is refused as kubectl refuses it.
    """
    if not paths:
        raise CLIError("must specify one of -f and -k")
    try:
        sources = read_sources(paths, recursive=recursive)
        items: list[Item] = []
        for source in sources:
            if validate:
                load(source, default_namespace=namespace)
            for decoded in decode_manifests(source.text):
                meta = decoded.obj.metadata  # type: ignore[attr-defined]
                if decoded.info.namespaced:
                    if explicit_namespace and meta.namespace and meta.namespace != namespace:
                        raise CLIError(
                            f'the namespace from the provided object "{meta.namespace}" does not match the '
                            f"namespace \"{namespace}\". You must pass '--namespace={meta.namespace}' to "
                            "perform this operation."
                        )
                    meta.namespace = meta.namespace or namespace
                else:
                    meta.namespace = ""
                items.append(Item(source.name, decoded.info, decoded.obj))
    except ManifestSourceError as exc:
        raise CLIError(str(exc)) from None
    except ManifestError as exc:
        raise CLIError(f"error decoding: {exc}") from None
    if not items:
        raise CLIError(f"no objects passed to {verb}")
    return items
