"""Benchmark: kube-proxy's control plane (sync time) and data plane (requests through a
ClusterIP), each beside its floor measured in the same run.

Control plane, for 1,000 and 10,000 services x 3 endpoints (ClusterIP, TCP):
  iptables mode   on each backend (nf_tables, legacy): full sync (save + generate +
                  iptables-*-restore --noflush) and partial sync after one endpoint changes,
                  beside a bare restore of the very same input with the same backend (the
                  floor: what the kernel and the iptables tools cost by themselves)
  userspace mode  rule programming only (python-iptables, one commit per table): all portals,
                  and one service's portals replaced, beside iptables-legacy-restore of the
                  same rules
Data plane: requests/s and p99 latency of short HTTP/1.0 requests (a connection each) from a
pod to a pod on the same node, straight to the pod IP and through the ClusterIP, interleaved
in rounds, in both modes.

Everything lives in lab namespaces this program creates (ppx-*) and deletes at the end.
Run as root from the repository root:  .venv/bin/python tests/bench/bench_proxy.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from services.proxy.cleanup import cleanup  # noqa: E402
from services.proxy.iptables_backend import BACKENDS, LEGACY, Backend  # noqa: E402
from services.proxy.iptables_mode.proxier import IptablesProxier  # noqa: E402
from services.proxy.iptables_mode.rules import RuleOptions, full_ruleset, partial_ruleset  # noqa: E402
from services.proxy.netns import NodeNamespace  # noqa: E402
from services.proxy.service_port import Endpoint, ServiceInfo, ServicePortName  # noqa: E402
from services.proxy.userspace import portals  # noqa: E402
from services.proxy.userspace.portal_rules import PortalRule, portal_rules  # noqa: E402
from services.proxy.userspace.proxier import UserspaceProxier  # noqa: E402
from tests.integration.proxy.lab import POD_PORT, Lab  # noqa: E402

CLUSTER_CIDR = "10.244.0.0/16"


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def med(samples: list[float]) -> float:
    return statistics.median(samples)


# ---------------------------------------------------------------------- control plane


def make_maps(
    count: int,
) -> tuple[dict[ServicePortName, ServiceInfo], dict[ServicePortName, tuple[Endpoint, ...]]]:
    services: dict[ServicePortName, ServiceInfo] = {}
    endpoints: dict[ServicePortName, tuple[Endpoint, ...]] = {}
    for i in range(count):
        name = ServicePortName("bench", f"svc-{i}", "http", "tcp")
        services[name] = ServiceInfo(f"10.{96 + i // 65000}.{(i // 250) % 256}.{i % 250 + 1}", 80, "tcp")
        endpoints[name] = tuple(
            Endpoint(f"10.244.{(i * 3 + j) // 250 % 256}.{(i * 3 + j) % 250 + 2}", 8080) for j in range(3)
        )
    return services, endpoints


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


async def bench_iptables_control(
    node: NodeNamespace, count: int, rounds: int, backend: Backend
) -> dict[str, Any]:
    await node.run(cleanup, backend)
    options = RuleOptions(cluster_cidr=CLUSTER_CIDR)
    proxier = IptablesProxier(backend, node, options)
    services, endpoints = make_maps(count)
    start = time.perf_counter()
    await proxier.sync(services, endpoints, None)
    first_full = time.perf_counter() - start
    full_text = full_ruleset(proxier.applied, options).render(list_first=backend.list_before_full_restore)
    fulls, full_floors = [], []
    for _ in range(rounds):
        full_floors.append(await node.run(timed, backend.restore, full_text))
        start = time.perf_counter()
        await proxier.sync(services, endpoints, None)
        fulls.append(time.perf_counter() - start)
    partials, partial_floors, generate = [], [], []
    names = list(services)
    for r in range(rounds * 2):
        name = names[(r * 7919) % len(names)]
        old = proxier.applied[name]
        eps = list(endpoints[name])
        eps[0] = Endpoint(f"10.244.255.{r % 250 + 2}", 8080)
        endpoints[name] = tuple(eps)
        start = time.perf_counter()
        await proxier.sync(services, endpoints, {name})
        partials.append(time.perf_counter() - start)
        new = proxier.applied[name]
        t0 = time.perf_counter()
        text = partial_ruleset({name: (old, new)}).render()
        generate.append(time.perf_counter() - t0)
        # the floor: a bare restore rewriting this service's chains (the same size of change)
        partial_floors.append(await node.run(timed, backend.restore, _redeclare(new)))
        del text
    # a no-op restore: libiptc reads and parses the whole table, then skips the write because
    # nothing changed; any real change pays this plus compiling and replacing the whole table
    empty_commits = [await node.run(timed, backend.restore, "*nat\nCOMMIT\n") for _ in range(rounds)]
    rules = proxier.rule_counts()
    await proxier.stop()
    await node.run(cleanup, backend)
    return {
        "backend": backend.name,
        "services": count,
        "rules_nat": rules["nat"],
        "restore_bytes_full": len(full_text),
        "first_full_s": first_full,
        "full_s": med(fulls),
        "full_floor_s": med(full_floors),
        "partial_s": med(partials),
        "partial_max_s": max(partials),
        "partial_floor_s": med(partial_floors),
        "empty_commit_s": med(empty_commits),
        "partial_generate_ms": med(generate) * 1000,
    }


def _redeclare(rules: Any) -> str:
    lines = ["*nat"]
    lines += [f":{chain} - [0:0]" for chain, _ in rules.chains]
    for _, chain_lines in rules.chains:
        lines += list(chain_lines)
    return "\n".join([*lines, "COMMIT", ""])


def portal_restore_text(rules: list[PortalRule]) -> str:
    out = []
    for table in ("filter", "nat"):
        mine = [r for r in rules if r.table == table]
        out.append(f"*{table}")
        out += sorted({f":{r.chain} - [0:0]" for r in mine})
        out += [f"-A {r.chain} {r.args()}" for r in mine]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


async def bench_userspace_control(node: NodeNamespace, count: int, rounds: int) -> dict[str, Any]:
    await node.run(cleanup, LEGACY)
    services, _ = make_maps(count)
    per_service = {
        name: portal_rules(name, info, 40000 + i % 20000, "0.0.0.0", "192.168.56.11")
        for i, (name, info) in enumerate(services.items())
    }
    every = [r for rules in per_service.values() for r in rules]
    fulls, full_floors, partials, partial_floors = [], [], [], []
    text = portal_restore_text(every)
    for _ in range(rounds + 1):  # the first round compiles every entry (cold)
        fulls.append(await node.run(timed, portals.ensure_and_flush, every))
        full_floors.append(await node.run(timed, LEGACY.restore, text))
    await node.run(portals.ensure_and_flush, every)
    names = list(services)
    for r in range(rounds * 2):
        name = names[(r * 7919) % len(names)]
        old = per_service[name]
        new = portal_rules(name, services[name], 30000 + r, "0.0.0.0", "192.168.56.11")
        per_service[name] = new
        partials.append(await node.run(timed, portals.update, old, new))
        change = "\n".join(
            [
                "*nat",
                *(f"-D {x.chain} {x.args()}" for x in new),
                *(f"-A {x.chain} {x.args()}" for x in new),
                "COMMIT",
                "",
            ]
        )
        partial_floors.append(await node.run(timed, LEGACY.restore, change))
    await node.run(cleanup, LEGACY)
    return {
        "services": count,
        "rules": len(every),
        "first_full_s": fulls[0],
        "full_s": med(fulls[1:] or fulls),
        "full_floor_s": med(full_floors),
        "partial_s": med(partials),
        "partial_floor_s": med(partial_floors),
    }


# ---------------------------------------------------------------------- data plane

LOAD_CLIENT = r"""
import asyncio, json, sys, time
ip, port, total, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lat = []; errors = 0
async def one():
    global errors
    t = time.perf_counter()
    try:
        r, w = await asyncio.open_connection(ip, port)
        w.write(b"GET / HTTP/1.0\r\n\r\n")
        data = await r.read()
        w.close()
        if not data.startswith(b"HTTP/1.0 200"):
            errors += 1; return
    except OSError:
        errors += 1; return
    lat.append(time.perf_counter() - t)
async def worker(n):
    for _ in range(n):
        await one()
async def main():
    t = time.perf_counter()
    await asyncio.gather(*(worker(total // conc) for _ in range(conc)))
    el = time.perf_counter() - t
    lat.sort()
    print(json.dumps({"rps": len(lat) / el, "p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99) - 1], "errors": errors}))
asyncio.run(main())
"""


def load(netns: str, ip: str, port: int, total: int, concurrency: int) -> dict[str, float]:
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            netns,
            sys.executable,
            "-c",
            LOAD_CLIENT,
            ip,
            str(port),
            str(total),
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


async def data_plane(
    lab: Lab, node: NodeNamespace, mode: str, rounds: int, total: int, conc: int, backend: Backend = LEGACY
) -> dict[str, Any]:
    server, client = lab.nodes[0].pods[0], lab.nodes[0].pods[1]
    name = ServicePortName("bench", "web", "http", "tcp")
    cluster_ip = "10.96.0.50"
    services = {name: ServiceInfo(cluster_ip, 80, "tcp")}
    endpoints = {name: (Endpoint(server.ip, POD_PORT),)}
    await node.run(cleanup, backend)
    proxier: IptablesProxier | UserspaceProxier
    if mode == "iptables":
        proxier = IptablesProxier(backend, node, RuleOptions(cluster_cidr=CLUSTER_CIDR))
    else:
        proxier = UserspaceProxier(LEGACY, node, node, host_ip=lab.nodes[0].ip)
    await proxier.start()
    await proxier.sync(services, endpoints, None)
    direct: list[dict[str, float]] = []
    via: list[dict[str, float]] = []
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, load, client.netns, cluster_ip, 80, total // 4, conc)  # warm up
    for r in range(rounds):
        # alternate the order so drift in the machine's load hits both alike
        for target in ("direct", "via") if r % 2 == 0 else ("via", "direct"):
            if target == "direct":
                direct.append(
                    await loop.run_in_executor(None, load, client.netns, server.ip, POD_PORT, total, conc)
                )
            else:
                via.append(await loop.run_in_executor(None, load, client.netns, cluster_ip, 80, total, conc))
    await proxier.stop()
    await node.run(cleanup, backend)

    def summary(runs: list[dict[str, float]]) -> dict[str, float]:
        return {
            "rps": med([r["rps"] for r in runs]),
            "p99_ms": med([r["p99"] for r in runs]) * 1000,
            "p50_ms": med([r["p50"] for r in runs]) * 1000,
            "errors": sum(r["errors"] for r in runs),
        }

    d, v = summary(direct), summary(via)
    # the median of per-round ratios: each round's pair ran back to back, under the same load
    ratio = med([b["rps"] / a["rps"] for a, b in zip(direct, via, strict=True)])
    label = f"{mode} ({backend.name})" if mode == "iptables" else mode
    return {"mode": label, "direct": d, "cluster_ip": v, "rps_ratio": ratio, "rounds": rounds}


# ---------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> dict[str, Any]:
    lab = Lab(pods_per_node=(2,)).build()
    node = NodeNamespace(lab.path(lab.nodes[0].netns), workers=2)
    results: dict[str, Any] = {"iptables": [], "userspace": [], "data_plane": []}
    try:
        if not args.skip_data_plane:
            runs = [("iptables", BACKENDS[b]) for b in args.backends] + [("userspace", LEGACY)]
            for mode, backend in runs:
                results["data_plane"].append(
                    await data_plane(
                        lab, node, mode, args.data_rounds, args.requests, args.concurrency, backend
                    )
                )
                print(json.dumps(results["data_plane"][-1]), flush=True)
        for count in [] if args.skip_control_plane else args.services:
            for name in args.backends:
                results["iptables"].append(
                    await bench_iptables_control(node, count, args.rounds, BACKENDS[name])
                )
                print(json.dumps(results["iptables"][-1]), flush=True)
            if not args.skip_userspace:
                results["userspace"].append(await bench_userspace_control(node, count, args.rounds))
                print(json.dumps(results["userspace"][-1]), flush=True)
    finally:
        for backend in (LEGACY, *(BACKENDS[b] for b in args.backends)):
            await node.run(cleanup, backend)
        node.close()
        lab.teardown()
    return results


def report(results: dict[str, Any]) -> None:
    print("\n## iptables mode: sync time (s), median")
    print(
        "| backend | services | nat rules | first full | full | floor (bare restore) | full/floor "
        "| partial (1 endpoint) | partial floor | no-op restore (table read) |"
    )
    for r in results["iptables"]:
        print(
            f"| {r['backend']} | {r['services']:,} | {r['rules_nat']:,} | {r['first_full_s']:.3f} | {r['full_s']:.3f} | "
            f"{r['full_floor_s']:.3f} | "
            f"{r['full_s'] / r['full_floor_s']:.2f} | {r['partial_s']:.3f} (max {r['partial_max_s']:.3f}) | "
            f"{r['partial_floor_s']:.3f} | {r['empty_commit_s']:.3f} |"
        )
    print("\n## userspace mode: rule programming (s), median")
    print(
        "| services | rules | all portals, cold | all portals (iptc) | floor (restore) | one service (iptc) | floor |"
    )
    for r in results["userspace"]:
        print(
            f"| {r['services']:,} | {r['rules']:,} | {r['first_full_s']:.3f} | {r['full_s']:.3f} | "
            f"{r['full_floor_s']:.3f} | "
            f"{r['partial_s']:.3f} | {r['partial_floor_s']:.3f} |"
        )
    print("\n## data plane")
    print(
        "| mode | direct rps | ClusterIP rps | ratio (median of rounds) | direct p99 ms | ClusterIP p99 ms | errors |"
    )
    for r in results["data_plane"]:
        d, v = r["direct"], r["cluster_ip"]
        print(
            f"| {r['mode']} | {d['rps']:.0f} | {v['rps']:.0f} | {r['rps_ratio']:.2f} | {d['p99_ms']:.2f} | "
            f"{v['p99_ms']:.2f} | {d['errors'] + v['errors']} |"
        )
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000, help="requests per data-plane run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--data-rounds", type=int, default=10, help="interleaved data-plane rounds")
    parser.add_argument("--skip-data-plane", action="store_true")
    parser.add_argument("--skip-control-plane", action="store_true")
    parser.add_argument("--skip-userspace", action="store_true", help="no userspace control-plane figures")
    parser.add_argument(
        "--backends",
        type=lambda s: [b for b in s.split(",") if b],
        default=["nft", "legacy"],
        help="iptables-mode backends to measure (nft,legacy)",
    )
    args = parser.parse_args()
    report(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
