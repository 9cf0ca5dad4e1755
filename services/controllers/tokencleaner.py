"""tokencleaner: deletes bootstrap-token Secrets (kube-system, type bootstrap.kubernetes.io/token)
once their expiration has passed, as kube-controller-manager's tokencleaner does. A token that
has not expired yet is looked at again when it does."""

from __future__ import annotations

import datetime as dt

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.client import jointoken
from services.client.errors import ConflictError, NotFoundError
from services.controllers.base import Controller, ControllerContext


class TokenCleaner(Controller):
    name = "tokencleaner"
    default_workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.secrets = self.informer("secrets")
        self.secrets.add_handlers(on_add=self._changed, on_update=lambda _old, new: self._changed(new))

    def _changed(self, secret: Message) -> None:
        if isinstance(secret, core_pb2.Secret) and _is_token(secret):
            self.enqueue_obj(secret)

    async def sync(self, key: str) -> None:
        secret = self.secrets.store.get(key)
        if not isinstance(secret, core_pb2.Secret) or not _is_token(secret):
            return
        try:
            record = jointoken.read_token_secret(secret)
        except ValueError as exc:
            self.log.info("ignoring malformed bootstrap token secret", secret=key, reason=str(exc))
            return
        if record.expiration is None:
            return
        remaining = (record.expiration - dt.datetime.now(dt.UTC)).total_seconds()
        if remaining > 0:
            self.enqueue_after(key, remaining)
            return
        try:
            await self.client.delete(
                "secrets", secret.metadata.name, secret.metadata.namespace, uid=secret.metadata.uid
            )
        except (NotFoundError, ConflictError):
            return
        self.log.info("deleted expired bootstrap token", secret=key, expired=str(record.expiration))


def _is_token(secret: core_pb2.Secret) -> bool:
    return (
        secret.metadata.namespace == jointoken.TOKEN_NAMESPACE and secret.type == jointoken.TOKEN_SECRET_TYPE
    )
