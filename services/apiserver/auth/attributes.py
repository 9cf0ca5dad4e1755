"""What a request asks to do, in the terms RBAC rules are written in."""

from __future__ import annotations

from dataclasses import dataclass

from services.apiserver.auth.user import UserInfo


@dataclass(frozen=True)
class RequestAttributes:
    user: UserInfo
    verb: str  # get, list, watch, create, update, patch, delete
    api_group: str
    resource: str  # plural, e.g. "pods"
    subresource: str = ""  # "status", "binding", "scale", "eviction", "log", "exec", "proxy"...
    namespace: str = ""
    name: str = ""
    # For list/watch: the field selector, so the Node authoriser can check spec.nodeName.
    field_selector: str = ""

    def describe(self) -> str:
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        group = f' in API group "{self.api_group}"' if self.api_group else ' in API group ""'
        scope = f' in the namespace "{self.namespace}"' if self.namespace else " at the cluster scope"
        return f'User "{self.user.name}" cannot {self.verb} resource "{resource}"{group}{scope}'
