"""ServiceAccounts: every active namespace has a `default` ServiceAccount, recreated if deleted
(pods name it implicitly). Token issuance belongs to the security work."""

from __future__ import annotations

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.client.errors import AlreadyExistsError, ForbiddenError, NotFoundError
from services.controllers.base import Controller, ControllerContext

DEFAULT_ACCOUNTS = ("default",)


class ServiceAccountController(Controller):
    name = "serviceaccount"
    default_workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.namespaces = self.informer("namespaces")
        self.accounts = self.informer("serviceaccounts")
        self.namespaces.add_handlers(on_add=self.enqueue_obj, on_update=lambda _o, n: self.enqueue_obj(n))
        self.accounts.add_handlers(on_delete=self._account_deleted)

    def _account_deleted(self, account: Message) -> None:
        self.enqueue(account.metadata.namespace)  # type: ignore[attr-defined]

    async def sync(self, namespace: str) -> None:
        ns = self.namespaces.store.get(namespace)
        if ns is None or ns.metadata.HasField("deletion_timestamp"):  # type: ignore[attr-defined]
            return
        if ns.status.phase == "Terminating":  # type: ignore[attr-defined]
            return
        for name in DEFAULT_ACCOUNTS:
            if self.accounts.store.get(f"{namespace}/{name}") is not None:
                continue
            account = core_pb2.ServiceAccount()
            account.metadata.name, account.metadata.namespace = name, namespace
            try:
                await self.client.create(account)
            except (AlreadyExistsError, ForbiddenError, NotFoundError):
                continue
