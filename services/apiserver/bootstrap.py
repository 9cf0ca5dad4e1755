"""What every cluster has from its first second: the system namespaces, and the `kubernetes`
Service on the first service IP with Endpoints pointing at the apiservers."""

from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.auth.policy import (
    default_cluster_role_bindings,
    default_cluster_roles,
    default_role_bindings,
    default_roles,
)
from services.apiserver.registry import Registry
from services.client import jointoken
from services.machinery.kinds import REGISTRY

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def ensure_namespaces(registry: Registry) -> None:
    for name in SYSTEM_NAMESPACES:
        namespace = core_pb2.Namespace()
        namespace.metadata.name = name
        try:
            await registry.create(namespace)
        except errors.APIError as exc:
            if exc.reason != "AlreadyExists":
                raise


async def ensure_kubernetes_service(registry: Registry, cluster_ip: str, address: str, port: int) -> None:
    """The `kubernetes` Service (ClusterIP = first service IP) and this apiserver in its Endpoints.

    Several apiservers each add their address; a dead one's leaves when its Lease expires
    (master_leases)."""
    services = REGISTRY.by_name("services")
    try:
        await registry.get(services, "default", "kubernetes")
    except errors.APIError as exc:
        if exc.reason != "NotFound":
            raise
        svc = core_pb2.Service()
        svc.metadata.name, svc.metadata.namespace = "kubernetes", "default"
        svc.metadata.labels.update({"component": "apiserver", "provider": "kubernetes"})
        svc.spec.cluster_ip = cluster_ip
        port_spec = svc.spec.ports.add(name="https", port=443, protocol="TCP")
        port_spec.target_port.int_val = port
        try:
            await registry.create(svc)
        except errors.APIError as create_error:
            if create_error.reason != "AlreadyExists":
                raise
    await _ensure_endpoint(registry, address, port)


async def _ensure_endpoint(registry: Registry, address: str, port: int) -> None:
    endpoints_info = REGISTRY.by_name("endpoints")
    try:
        current = await registry.get(endpoints_info, "default", "kubernetes")
    except errors.APIError as exc:
        if exc.reason != "NotFound":
            raise
        endpoints = core_pb2.Endpoints()
        endpoints.metadata.name, endpoints.metadata.namespace = "kubernetes", "default"
        subset = endpoints.subsets.add()
        subset.addresses.add(ip=address)
        subset.ports.add(name="https", port=port, protocol="TCP")
        try:
            await registry.create(endpoints)
            return
        except errors.APIError as create_error:
            if create_error.reason != "AlreadyExists":
                raise
        current = await registry.get(endpoints_info, "default", "kubernetes")

    def add(endpoints: core_pb2.Endpoints) -> None:
        if not endpoints.subsets:
            endpoints.subsets.add().ports.add(name="https", port=port, protocol="TCP")
        subset = endpoints.subsets[0]
        if all(a.ip != address for a in subset.addresses):
            subset.addresses.add(ip=address)

    assert isinstance(current, core_pb2.Endpoints)
    if all(a.ip != address for s in current.subsets for a in s.addresses):
        await registry.update_with(endpoints_info, "default", "kubernetes", add)


async def ensure_default_policy(registry: Registry) -> None:
    """Create the default ClusterRoles and ClusterRoleBindings that are missing (never
    overwrite an operator's edits)."""
    for obj in [
        *default_cluster_roles(),
        *default_cluster_role_bindings(),
        *default_roles(),
        *default_role_bindings(),
    ]:
        try:
            await registry.create(obj)
        except errors.APIError as exc:
            if exc.reason != "AlreadyExists":
                raise


async def ensure_cluster_info(registry: Registry, ca_pem: bytes, server: str) -> None:
    """kube-public/cluster-info, as kubeadm publishes it for joining nodes: the cluster CA and
    this apiserver's address. Replaced when either changed (a new CA, a moved apiserver); with
    several apiservers the last one started names itself, and any of them serves a node."""
    wanted = jointoken.cluster_info_configmap(ca_pem, server)
    info = REGISTRY.by_name("configmaps")
    try:
        current = await registry.get(info, wanted.metadata.namespace, wanted.metadata.name)
    except errors.APIError as exc:
        if exc.reason != "NotFound":
            raise
        try:
            await registry.create(wanted)
        except errors.APIError as create_error:
            if create_error.reason != "AlreadyExists":
                raise
        return
    assert isinstance(current, core_pb2.ConfigMap)
    if current.data.get("kubeconfig") != wanted.data["kubeconfig"]:

        def replace(configmap: core_pb2.ConfigMap) -> None:
            configmap.data["kubeconfig"] = wanted.data["kubeconfig"]

        await registry.update_with(info, wanted.metadata.namespace, wanted.metadata.name, replace)
