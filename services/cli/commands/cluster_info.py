"""`pinctl cluster-info [dump]`: where the control plane answers and which cluster services
run (the apiserver's `kubernetes` Service, and kube-system Services labelled
kubernetes.io/cluster-service=true, such as kube-dns); `dump` prints the cluster's state as
JSON for a bug report."""

from __future__ import annotations

import argparse

from pinnace.api.core.v1 import core_pb2
from services.cli import printers
from services.cli.context import CommandContext
from services.client.errors import NotFoundError

CLUSTER_SERVICE_LABEL = "kubernetes.io/cluster-service"
_DUMPED = ("events", "replicationcontrollers", "services", "daemonsets", "deployments", "replicasets", "pods")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("cluster-info", help="show where the control plane and cluster services run")
    parser.add_argument("what", nargs="?", choices=("dump",), help="dump: the cluster state as JSON")
    parser.add_argument(
        "--namespaces",
        default="",
        help="with dump: comma-separated namespaces (default: kube-system,default)",
    )
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="with dump: every namespace")
    parser.set_defaults(handler=run)


def _address(service: core_pb2.Service) -> str:
    port = service.spec.ports[0].port if service.spec.ports else 0
    return f"{service.spec.cluster_ip}:{port}" if port else service.spec.cluster_ip


async def _dump(ctx: CommandContext, args: argparse.Namespace) -> int:
    client = ctx.client()
    nodes = await client.list_all("nodes")
    ctx.out.write(printers.dump(printers.as_list(nodes.items, nodes.resource_version), "json"))
    if args.all_namespaces:
        namespaces = [n.metadata.name for n in (await client.list_all("namespaces")).items]  # type: ignore[attr-defined]
    else:
        namespaces = [n for n in (args.namespaces or "kube-system,default").split(",") if n]
    for namespace in namespaces:
        for resource in _DUMPED:
            listed = await client.list_all(resource, namespace)
            ctx.out.write(printers.dump(printers.as_list(listed.items, listed.resource_version), "json"))
    ctx.out.flush()
    return 0


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    if args.what == "dump":
        return await _dump(ctx, args)
    client = ctx.client()
    ctx.print(f"Kubernetes control plane is running at {ctx.credentials().server}")
    try:
        apiserver = await client.get("services", "kubernetes", "default")
    except NotFoundError:
        apiserver = None
    if isinstance(apiserver, core_pb2.Service):
        ctx.print(f"The kubernetes service (the API inside the cluster) is at {_address(apiserver)}")
    listed = await client.list_all("services", "kube-system", label_selector=f"{CLUSTER_SERVICE_LABEL}=true")
    for service in listed.items:
        assert isinstance(service, core_pb2.Service)
        name = service.metadata.labels.get("kubernetes.io/name") or service.metadata.name
        ctx.print(f"{name} is running at {_address(service)}")
    ctx.print("\nTo further debug and diagnose cluster problems, use 'pinctl cluster-info dump'.")
    return 0
