"""`pinctl top node [NAME] [-l SEL]` and `pinctl top pod [NAME] [-n NS | -A] [-l SEL]
[--containers]`: CPU and memory use as `kubectl top` shows it, computed from the kubelets'
stats summaries (services/client/resource_metrics.py) instead of metrics-server. Nodes: CPU in
millicores and memory in Mi with their share of allocatable (or capacity); pods: the sums over
their containers. Needs `get` on nodes/stats (cluster-admin, system:kubelet-api-admin)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from google.protobuf.message import Message

from pinnace.api.core.v1 import core_pb2
from services.cli import flags
from services.cli.context import CommandContext
from services.cli.errors import CLIError
from services.cli.printers import render_table
from services.client.errors import APIStatusError
from services.client.resource_metrics import PodUsage, Usage, node_usage, pod_usages, summaries
from services.machinery.quantity import QuantityError, parse_quantity

UNKNOWN = "<unknown>"
MI = 1024 * 1024


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("top", help="CPU and memory use of nodes or pods")
    kinds = parser.add_subparsers(dest="top_kind", required=True, metavar="node|pod")
    node = kinds.add_parser("node", aliases=["nodes", "no"], help="CPU and memory of nodes")
    node.add_argument("name", nargs="?", default="", metavar="NAME")
    node.add_argument("-l", "--selector", default="", help="only nodes with these labels")
    node.add_argument(
        "--show-capacity", action="store_true", help="percentages of capacity instead of allocatable"
    )
    _common(node)
    node.set_defaults(handler=run_nodes)
    pod = kinds.add_parser("pod", aliases=["pods", "po"], help="CPU and memory of pods")
    pod.add_argument("name", nargs="?", default="", metavar="NAME")
    pod.add_argument("-l", "--selector", default="", help="only pods with these labels")
    pod.add_argument("--containers", action="store_true", help="one line per container")
    flags.add_namespace(pod, all_namespaces=True)
    _common(pod)
    pod.set_defaults(handler=run_pods)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sort-by", choices=("cpu", "memory"), default="", help="sort by this column")
    parser.add_argument("--no-headers", action="store_true", help="omit the header line")


def _cpu(usage: Usage) -> str:
    return f"{usage.cpu_millicores}m"


def _memory(usage: Usage) -> str:
    return f"{usage.memory_bytes // MI}Mi"


def _percent(used: int, total: int | None) -> str:
    return f"{used * 100 // total}%" if total else UNKNOWN


def _sorted(rows: list[tuple[Usage | None, list[str]]], key: str) -> list[list[str]]:
    if key:

        def weight(item: tuple[Usage | None, list[str]]) -> int:
            usage = item[0]
            if usage is None:
                return -1
            return usage.cpu_nanocores if key == "cpu" else usage.memory_bytes

        rows = sorted(rows, key=weight, reverse=True)
    return [cells for _, cells in rows]


def _print(ctx: CommandContext, header: list[str], rows: list[list[str]], no_headers: bool) -> None:
    ctx.out.write(render_table(rows if no_headers else [header, *rows]))
    ctx.out.flush()


def _resource(node: core_pb2.Node, name: str, capacity: bool) -> int | None:
    values = node.status.capacity if capacity else node.status.allocatable
    try:
        quantity = parse_quantity(values[name])
    except (KeyError, QuantityError):
        return None
    return quantity.milli_value() if name == "cpu" else quantity.int_value()


def _raise_first_failure(results: Mapping[str, object]) -> None:
    """When nothing could be measured, why (Forbidden, a kubelet down) is the answer."""
    for result in results.values():
        if isinstance(result, APIStatusError):
            raise result


async def run_nodes(ctx: CommandContext, args: argparse.Namespace) -> int:
    client = ctx.client()
    if args.name:
        found: list[Message] = [await client.get("nodes", args.name)]
    else:
        found = (await client.list_all("nodes", label_selector=args.selector)).items
    nodes = sorted((n for n in found if isinstance(n, core_pb2.Node)), key=lambda n: n.metadata.name)
    if not nodes:
        raise CLIError("metrics not available yet")
    results = await summaries(client.node_proxy, [n.metadata.name for n in nodes])
    rows: list[tuple[Usage | None, list[str]]] = []
    for node in nodes:
        result = results.get(node.metadata.name)
        usage = node_usage(result) if result is not None and not isinstance(result, Exception) else None
        if usage is None:
            rows.append((None, [node.metadata.name, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]))
            continue
        cpu_total = _resource(node, "cpu", args.show_capacity)
        memory_total = _resource(node, "memory", args.show_capacity)
        cells = [
            node.metadata.name,
            _cpu(usage),
            _percent(usage.cpu_millicores, cpu_total),
            _memory(usage),
            _percent(usage.memory_bytes, memory_total),
        ]
        rows.append((usage, cells))
    if all(usage is None for usage, _ in rows):
        _raise_first_failure(results)
        raise CLIError("metrics not available yet")
    header = ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
    _print(ctx, header, _sorted(rows, args.sort_by), args.no_headers)
    return 0


async def run_pods(ctx: CommandContext, args: argparse.Namespace) -> int:
    client = ctx.client()
    namespace = "" if ctx.all_namespaces else ctx.namespace
    if args.name:
        found: list[Message] = [await client.get("pods", args.name, namespace)]
    else:
        found = (await client.list_all("pods", namespace, label_selector=args.selector)).items
    pods = [p for p in found if isinstance(p, core_pb2.Pod) and p.spec.node_name]
    results = await summaries(client.node_proxy, {p.spec.node_name for p in pods})
    measured: dict[tuple[str, str], PodUsage] = {}
    for result in results.values():
        if not isinstance(result, Exception):
            measured.update({(u.namespace, u.name): u for u in pod_usages(result)})
    usages = [
        measured[key]
        for p in pods
        if (key := (p.metadata.namespace, p.metadata.name)) in measured
        # the same name may be a newer pod than the one measured
        and p.status.phase == "Running"
    ]
    if not usages:
        _raise_first_failure(results)
    if args.name and not usages:
        raise CLIError(f"Metrics not available for pod {namespace}/{args.name}")
    if not usages:
        where = "" if ctx.all_namespaces else f" in {namespace} namespace"
        ctx.warn(f"No resources found{where}.")
        return 0
    prefix = ["NAMESPACE"] if ctx.all_namespaces else []
    rows: list[tuple[Usage | None, list[str]]] = []
    for usage in sorted(usages, key=lambda u: (u.namespace, u.name)):
        lead = [usage.namespace] if ctx.all_namespaces else []
        if args.containers:
            for name, container in sorted(usage.containers.items()):
                rows.append((container, [*lead, usage.name, name, _cpu(container), _memory(container)]))
        else:
            rows.append((usage.usage, [*lead, usage.name, _cpu(usage.usage), _memory(usage.usage)]))
    header = [*prefix, "POD", "NAME"] if args.containers else [*prefix, "NAME"]
    _print(ctx, [*header, "CPU(cores)", "MEMORY(bytes)"], _sorted(rows, args.sort_by), args.no_headers)
    return 0
