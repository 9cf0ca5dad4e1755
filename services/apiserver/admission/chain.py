"""The admission chain and the contract its plugins meet."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from google.protobuf.message import Message

from services.apiserver.auth.guard import CURRENT_USER
from services.apiserver.auth.user import UserInfo
from services.machinery.kinds import KindInfo


class Operation(Enum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    CONNECT = "CONNECT"


@dataclass
class Attributes:
    """What a plugin sees of one request."""

    operation: Operation
    info: KindInfo
    namespace: str
    name: str
    obj: Message | None
    old: Message | None = None
    subresource: str = ""
    dry_run: bool = False
    user: UserInfo | None = field(default_factory=CURRENT_USER.get)
    # Plugins record what they took here, to roll it back on failure.
    taken: dict[str, Any] = field(default_factory=dict)


class AdmissionPlugin:
    """Override what the plugin needs; every hook defaults to doing nothing."""

    name = "plugin"

    async def admit(self, attrs: Attributes) -> None:
        """Mutating stage."""

    async def validate(self, attrs: Attributes) -> None:
        """Validating stage: raise an APIError to refuse."""

    async def rollback(self, attrs: Attributes) -> None:
        """Undo what admit took: the request failed after admit ran."""

    async def committed(self, attrs: Attributes) -> None:
        """The write succeeded: finish what admit started (release what the object gave up)."""

    async def committed_delete(self, attrs: Attributes, last: Message) -> None:
        """The object is gone from storage: release what it held."""


def _overrides(plugin: AdmissionPlugin, hook: str) -> bool:
    return getattr(type(plugin), hook) is not getattr(AdmissionPlugin, hook)


class AdmissionChain:
    def __init__(self, plugins: list[AdmissionPlugin]) -> None:
        self.plugins = plugins
        # Each hook runs only the plugins that implement it: every write passes through here.
        self._hooked = {
            hook: [p for p in plugins if _overrides(p, hook)]
            for hook in ("admit", "validate", "rollback", "committed", "committed_delete")
        }

    async def admit(self, attrs: Attributes) -> None:
        done: list[AdmissionPlugin] = []
        try:
            for plugin in self._hooked["admit"]:
                await plugin.admit(attrs)
                done.append(plugin)
            for plugin in self._hooked["validate"]:
                await plugin.validate(attrs)
        except BaseException:
            await self.rollback(attrs, done)
            raise

    async def rollback(self, attrs: Attributes, plugins: list[AdmissionPlugin] | None = None) -> None:
        """Undo, newest first, what the plugins that admitted took (all of them by default)."""
        admitted = plugins if plugins is not None else self.plugins
        for plugin in reversed(admitted):
            if _overrides(plugin, "rollback"):
                await plugin.rollback(attrs)

    async def committed(self, attrs: Attributes) -> None:
        for plugin in self._hooked["committed"]:
            await plugin.committed(attrs)

    async def committed_delete(self, attrs: Attributes, last: Message) -> None:
        for plugin in self._hooked["committed_delete"]:
            await plugin.committed_delete(attrs, last)
