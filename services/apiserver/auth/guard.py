"""The first two stages of every request: who is it (authentication), and may they (authorisation).
A refusal changes nothing: it happens before admission and storage."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import grpc

from services.apiserver import errors
from services.apiserver.auth.attributes import RequestAttributes
from services.apiserver.auth.authn import Authenticator
from services.apiserver.auth.authz import Decision, UnionAuthorizer
from services.apiserver.auth.user import ANONYMOUS_USER, UserInfo
from services.machinery.kinds import KindInfo

# The caller of the request being served (each gRPC call runs in its own task and context), for
# admission plugins that decide by identity (NodeRestriction).
CURRENT_USER: ContextVar[UserInfo | None] = ContextVar("pinnace_current_user", default=None)


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
        user: UserInfo | None = None,
    ) -> UserInfo:
        """Authorise one request; `user` is the caller when the stream carrying the request was
        authenticated once already (a Pipeline stream), otherwise the context is authenticated now."""
        if user is None:
            user = self.authenticate(context)
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

    def authenticate(self, context: grpc.aio.ServicerContext[Any, Any]) -> UserInfo:
        """The caller of a call or stream, from its TLS peer certificate or its metadata."""
        if not self.authenticator.enabled:
            # Reading the TLS peer and the metadata costs two calls into gRPC per request (a
            # measurable share of a small create); an apiserver without authentication needs neither.
            return ANONYMOUS_USER
        auth_context = {key: list(values) for key, values in (context.auth_context() or {}).items()}
        metadata: Any = context.invocation_metadata() or ()
        return self.authenticator.authenticate(auth_context, [(m[0], m[1]) for m in metadata])
