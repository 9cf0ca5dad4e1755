"""The root CA publisher (kube-controller-manager's root-ca-cert-publisher): every namespace has
a ConfigMap `kube-root-ca.crt` whose `ca.crt` is the CA bundle that verifies the apiserver.
Pods' service-account volumes project it to /var/run/secrets/kubernetes.io/serviceaccount/ca.crt,
so a pod can check it talks to the real apiserver. An edited or deleted copy is put back."""

from __future__ import annotations

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.client.errors import AlreadyExistsError, ConflictError, NotFoundError
from services.controllers.base import Controller, ControllerContext

CONFIG_MAP = "kube-root-ca.crt"
KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)


class RootCACertPublisher(Controller):
    name = "root-ca-cert-publisher"
    default_workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.root_ca = ctx.settings.root_ca.decode()
        self.namespaces = self.informer("namespaces")
        self.config_maps = self.informer("configmaps")
        self.namespaces.add_handlers(on_add=self.enqueue_obj, on_update=lambda _o, n: self.enqueue_obj(n))
        self.config_maps.add_handlers(
            on_update=lambda _o, n: self._config_map_changed(n), on_delete=self._config_map_changed
        )

    def _config_map_changed(self, config_map: Message) -> None:
        if config_map.metadata.name == CONFIG_MAP:  # type: ignore[attr-defined]
            self.enqueue(config_map.metadata.namespace)  # type: ignore[attr-defined]

    async def sync(self, namespace: str) -> None:
        ns = self.namespaces.store.get(namespace)
        if ns is None or ns.metadata.HasField("deletion_timestamp"):  # type: ignore[attr-defined]
            return
        current = self.config_maps.store.get(f"{namespace}/{CONFIG_MAP}")
        if current is None:
            wanted = core_pb2.ConfigMap()
            wanted.metadata.name, wanted.metadata.namespace = CONFIG_MAP, namespace
            wanted.metadata.annotations[DESCRIPTION_ANNOTATION] = DESCRIPTION
            wanted.data[KEY] = self.root_ca
            try:
                await self.client.create(wanted)
            except (AlreadyExistsError, NotFoundError):
                # Created meanwhile (the informer will show it), or the namespace is going away.
                return
            return
        assert isinstance(current, core_pb2.ConfigMap)
        if (
            dict(current.data) == {KEY: self.root_ca}
            and not current.binary_data
            and current.metadata.annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION
        ):
            return
        repaired = core_pb2.ConfigMap()
        repaired.CopyFrom(current)
        repaired.ClearField("binary_data")
        repaired.ClearField("data")
        repaired.data[KEY] = self.root_ca
        repaired.metadata.annotations[DESCRIPTION_ANNOTATION] = DESCRIPTION
        try:
            await self.client.update(repaired)
        except (ConflictError, NotFoundError):
            # Changed or deleted meanwhile: the informer event brings the namespace back.
            return
