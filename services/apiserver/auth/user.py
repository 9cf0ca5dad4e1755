"""Who is calling, as the authenticators establish it."""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM_MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""

    def node_name(self) -> str | None:
        """The node a kubelet identity speaks for (system:node:<name> in system:nodes)."""
        if self.name.startswith(NODE_PREFIX) and NODES_GROUP in self.groups:
            return self.name[len(NODE_PREFIX) :]
        return None


ANONYMOUS_USER = UserInfo(ANONYMOUS, (UNAUTHENTICATED,))
