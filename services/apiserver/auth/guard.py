"""The first two stages of every request: who is it (authentication), and may they (authorisation).
A refusal changes nothing: it happens before admission and storage."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from services.apiserver import errors
from services.apiserver.auth.attributes import RequestAttributes
from services.apiserver.auth.authn import Authenticator
from services.apiserver.auth.authz import Decision, UnionAuthorizer
from services.apiserver.auth.user import UserInfo
from services.machinery.kinds import KindInfo

# The caller of the request being served (each gRPC call runs in its own task and context), for
# admission plugins that decide by identity (NodeRestriction).
CURRENT_USER: ContextVar[UserInfo | None] = ContextVar("pinnace_current_user", default=None)


@dataclass(frozen=True)
class Credentials:
    """What a call presented: its TLS peer's auth context (the verified client certificate) and
    its metadata (a bearer token). A stream presents them once for all its calls, but each call
    is authenticated from them again, so a token that expires or is revoked mid-stream stops
    working at the next call, as it would for a new request."""

    auth_context: dict[str, list[bytes]]
    metadata: list[tuple[str, str | bytes]]


NO_CREDENTIALS = Credentials({}, [])


class RequestGuard:
    def __init__(self, authenticator: Authenticator, authorizer: UnionAuthorizer) -> None:
        self.authenticator = authenticator
        self.authorizer = authorizer

    def check(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        verb: str,
        info: KindInfo,
        namespace: str = "",
        name: str = "",
        subresource: str = "",
        field_selector: str = "",
        credentials: Credentials | None = None,
    ) -> UserInfo:
        """Authenticate and authorise one request. `credentials` are what the stream carrying
        the request presented, read once (a Pipeline stream); otherwise they are read from the
        context now."""
        presented = credentials if credentials is not None else self.credentials(context)
        user = self.authenticator.authenticate(presented.auth_context, presented.metadata)
        CURRENT_USER.set(user)
        attrs = RequestAttributes(
            user,
            verb,
            info.group,
            info.plural,
            subresource,
            namespace if info.namespaced else "",
            name,
            field_selector,
        )
        if self.authorizer.authorize(attrs) is not Decision.ALLOW:
            subject = f'{info.resource} "{name}"' if name else info.resource
            raise errors.APIError(
                "Forbidden",
                f"{subject} is forbidden: {attrs.describe()}",
                kind=info.plural,
                name=name,
                group=info.group,
            )
        return user

    def credentials(self, context: grpc.aio.ServicerContext[Any, Any]) -> Credentials:
        """What a call or stream presented: its TLS peer and its metadata."""
        if not self.authenticator.enabled:
            # Reading them costs two calls into gRPC (a measurable share of a small create); an
            # apiserver without authentication does not look at them.
            return NO_CREDENTIALS
        auth_context = {key: list(values) for key, values in (context.auth_context() or {}).items()}
        metadata: Any = context.invocation_metadata() or ()
        return Credentials(auth_context, [(m[0], m[1]) for m in metadata])
