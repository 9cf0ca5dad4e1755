"""Scheduler figures (issue 7), with hollow nodes (Node objects no kubelet serves).

  .venv/bin/python -m tests.bench.bench_scheduler [--pods 10000] [--nodes 1000,5000] [--skip-e2e]

1. Algorithm alone (no API): pods/s placing --pods pods with requests on 1,000 and 5,000 nodes
   (parsing each pod, filtering, scoring, assuming), beside kube-scheduler's CI threshold for
   SchedulingBasic (680 pods/s at 5,000 nodes / 10,000 pods, with its in-process apiserver).
2. Ablation, same run: each Borg technique (equivalence classes, score caching, relaxed
   randomisation) off in turn, and all three off (the naive baseline), at 5,000 nodes.
3. A spread workload (required anti-affinity by hostname) and a preemption workload (nodes full
   of low-priority pods, then high-priority pods that must evict), algorithm alone.
4. End to end: the real apiserver program (SQLite) and the real scheduler program, each its own
   process; this process creates the nodes, then --pods pods, and watches until all are bound.
   Twice per node count: the pods created by unary Create calls, then on one Pipeline stream (as
   the scheduler sends its bindings and Events). Baselines in the same run: the apiserver's create
   rate for the same pods (the write ceiling), and the CPU a bare gRPC server spends per call.

Every phase is bounded in time (--budget seconds per phase); a phase cut short reports the pods
it placed. Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.client.client import Client
from services.scheduler import preemption
from services.scheduler.cache import Cache
from services.scheduler.config import SchedulerConfig
from services.scheduler.framework import FitError, Framework
from services.scheduler.podinfo import pod_info
from tests.bench.grpc_floor import cpu_seconds
from tests.bench.grpc_floor import measure as measure_grpc_floor
from tests.integration.apiserver.process import ApiserverProcess, free_port

KUBE_THRESHOLD = 680.0


def hollow_node(i: int, zones: int = 10) -> core_pb2.Node:
    node = core_pb2.Node()
    name = f"hollow-{i:05}"
    node.metadata.name = name
    node.metadata.labels.update(
        {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": f"zone-{i % zones}"}
    )
    for key, value in (("cpu", "4"), ("memory", "32Gi"), ("pods", "110")):
        node.status.capacity[key] = value
        node.status.allocatable[key] = value
    node.status.conditions.add(type="Ready", status="True")
    return node


def basic_pod(i: int, prefix: str = "pod", priority: int | None = None, cpu: str = "100m") -> core_pb2.Pod:
    """kube-scheduler_perf's pod-default.yaml: one container with cpu/memory requests."""
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = f"{prefix}-{i:05}", "default"
    pod.metadata.uid = f"{prefix}-uid-{i}"
    pod.metadata.creation_timestamp.FromSeconds(1_700_000_000 + i)
    pod.metadata.labels["app"] = prefix
    container = pod.spec.containers.add(name="pause", image="pinnace/pause:1.0")
    container.resources.requests["cpu"] = cpu
    container.resources.requests["memory"] = "500Mi"
    pod.spec.scheduler_name = "default-scheduler"
    if priority is not None:
        pod.spec.priority = priority
    return pod


def anti_affinity_pod(i: int) -> core_pb2.Pod:
    pod = basic_pod(i, "spread")
    term = pod.spec.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution.add()
    term.topology_key = "kubernetes.io/hostname"
    term.label_selector.CopyFrom(meta_pb2.LabelSelector(match_labels={"app": "spread"}))
    return pod


def run_algorithm(
    nodes: int,
    pods: int,
    config: SchedulerConfig,
    budget: float,
    make: Callable[[int], core_pb2.Pod] = basic_pod,
) -> tuple[int, float, Framework]:
    cache = Cache()
    for i in range(nodes):
        cache.add_node(hollow_node(i))
    framework = Framework(config, cache, random.Random(7))
    placed = 0
    started = time.perf_counter()
    deadline = started + budget
    for i in range(pods):
        info = pod_info(make(i))
        try:
            result = framework.schedule(info)
        except FitError:
            continue
        cache.assume(info, result.node)
        placed += 1
        if time.perf_counter() > deadline:
            break
    return placed, time.perf_counter() - started, framework


def optimisations(ecache: bool = True, scache: bool = True, relaxed: bool = True) -> SchedulerConfig:
    return SchedulerConfig(equivalence_classes=ecache, score_caching=scache, relaxed_randomization=relaxed)


def phase_algorithm(args: argparse.Namespace) -> None:
    print(
        f"\n## 1. Algorithm alone: {args.pods} pods (100m cpu, 500Mi), hollow nodes 4 cpu / 32Gi / 110 pods"
    )
    print(
        f"{'nodes':>6} {'pods/s':>9} {'vs kube 680':>12} {'placed':>7} {'ecache hit':>11} {'nodes/cycle':>12}"
    )
    for nodes in args.node_counts:
        placed, elapsed, fw = run_algorithm(nodes, args.pods, optimisations(), args.budget)
        stats = fw.stats
        hit = stats.filter_hits / max(stats.filter_hits + stats.filter_misses, 1)
        rate = placed / elapsed
        print(
            f"{nodes:>6} {rate:>9.0f} {rate / KUBE_THRESHOLD:>11.2f}x {placed:>7} {hit:>10.1%}"
            f" {stats.nodes_examined / max(placed, 1):>12.0f}"
        )


def phase_ablation(args: argparse.Namespace) -> None:
    nodes = max(args.node_counts)
    pods = min(args.pods, args.ablation_pods)
    print(f"\n## 2. Ablation at {nodes} nodes, up to {pods} pods (each phase at most {args.budget:.0f} s)")
    print(f"{'variant':<34} {'pods/s':>9} {'placed':>7} {'slowdown':>9}")
    variants = [
        ("all techniques on", optimisations()),
        ("equivalence classes off", optimisations(ecache=False)),
        ("score caching off", optimisations(scache=False)),
        ("relaxed randomisation off", optimisations(relaxed=False)),
        ("all off (naive baseline)", optimisations(False, False, False)),
    ]
    reference = 0.0
    for label, config in variants:
        placed, elapsed, _ = run_algorithm(nodes, pods, config, args.budget)
        rate = placed / elapsed
        reference = reference or rate
        print(f"{label:<34} {rate:>9.0f} {placed:>7} {reference / rate:>8.1f}x")


def phase_workloads(args: argparse.Namespace) -> None:
    nodes = 1000
    print(f"\n## 3. Workloads, algorithm alone, {nodes} nodes")
    placed, elapsed, _ = run_algorithm(nodes, nodes, optimisations(), args.budget, anti_affinity_pod)
    print(
        f"spread (required anti-affinity by hostname, {nodes} pods): {placed / elapsed:.0f} pods/s, placed {placed}"
    )

    cache = Cache()
    for i in range(nodes // 2):
        cache.add_node(hollow_node(i))
    fw = Framework(optimisations(), cache, random.Random(7))
    filler = 0
    for i in range(nodes // 2 * 4):  # four 1-cpu low-priority pods fill each 4-cpu node
        info = pod_info(basic_pod(i, "low", priority=1, cpu="1"))
        cache.assume(info, fw.schedule(info).node)
        filler += 1
    rng = random.Random(7)
    preempted = victims = 0
    started = time.perf_counter()
    count = nodes // 2
    for i in range(count):
        info = pod_info(basic_pod(i, "high", priority=1000, cpu="1"))
        try:
            cache.assume(info, fw.schedule(info).node)
            continue
        except FitError as error:
            candidate = preemption.find_candidate(fw, info, error, rng)
        if candidate is None:
            continue
        for victim in candidate.victims:
            cache.remove_pod(victim.key)
        victims += len(candidate.victims)
        cache.assume(info, candidate.node)
        preempted += 1
        if time.perf_counter() - started > args.budget:
            break
    elapsed = time.perf_counter() - started
    print(
        f"preemption ({nodes // 2} full nodes, {filler} low-priority pods, {count} high-priority pods):"
        f" {preempted / elapsed:.0f} preemptions/s, {victims} victims for {preempted} pods"
    )


# ---------------------------------------------------------------------- end to end


async def create_all(client: Client, objects: list, parallel: int = 64) -> float:
    started = time.perf_counter()
    queue = iter(objects)

    async def worker() -> None:
        for obj in queue:
            await client.create(obj)

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return time.perf_counter() - started


async def wait_metrics(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
            body = await reader.read()
            writer.close()
            if b"scheduler_pending_pods{" in body:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("scheduler did not report ready")


async def e2e_run(nodes: int, pods: int, budget: float, synchronous: str, pipelined: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        apiserver = ApiserverProcess(
            Path(tmp), extra_args=["--sqlite-synchronous", synchronous, "--history-seconds", "3600"]
        )
        await apiserver.start()
        scheduler: subprocess.Popen[bytes] | None = None
        try:
            async with Client.connect(apiserver.address, timeout=60) as client:
                node_seconds = await create_all(client, [hollow_node(i) for i in range(nodes)])
                metrics_port = free_port()
                log = (Path(tmp) / "scheduler.log").open("ab")
                scheduler = subprocess.Popen(
                    [
                        sys.executable, "-m", "pinnace_cmd.scheduler",
                        "--apiserver", apiserver.address,
                        "--leader-elect", "false",
                        "--metrics-listen", f"127.0.0.1:{metrics_port}",
                    ],
                    stdout=log, stderr=log, env={**os.environ, "PINNACE_LOG_LEVEL": "WARNING"},
                )  # fmt: skip
                await wait_metrics(metrics_port, 60)
                if pipelined:
                    client.use_pipeline()
                listed = await client.list("pods", "default", resource_version="0")
                bound = 0
                first_bind = last_bind = 0.0
                done = asyncio.Event()

                async def watch() -> None:
                    nonlocal bound, first_bind, last_bind
                    seen: set[str] = set()
                    async for event in client.watch(
                        "pods", "default", resource_version=listed.resource_version
                    ):
                        pod = event.obj
                        if pod.spec.node_name and pod.metadata.name not in seen:
                            seen.add(pod.metadata.name)
                            bound += 1
                            last_bind = time.perf_counter()
                            first_bind = first_bind or last_bind
                            if bound >= pods:
                                done.set()
                                return

                watcher = asyncio.create_task(watch())
                assert apiserver.process is not None
                pids = {"apiserver": apiserver.process.pid, "scheduler": scheduler.pid, "load": os.getpid()}
                cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                started = time.perf_counter()
                create_seconds = await create_all(client, [basic_pod(i) for i in range(pods)])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), budget)
                watcher.cancel()
                cpu_ms = {
                    name: 1000 * (cpu_seconds(pid) - cpu_before[name]) / max(bound, 1)
                    for name, pid in pids.items()
                }
                total = (last_bind or time.perf_counter()) - started
                scheduled_events = await count_scheduled_events(client, bound)
                print(
                    f"{'pipeline' if pipelined else 'unary':>9} {nodes:>6} {bound:>6}/{pods} {bound / total:>9.0f} {bound / max(last_bind - first_bind, 1e-9):>11.0f}"
                    f" {pods / create_seconds:>10.0f} {nodes / node_seconds:>9.0f} {bound / total / KUBE_THRESHOLD:>9.2f}x"
                    f" {cpu_ms['apiserver']:>9.2f} {cpu_ms['scheduler']:>9.2f} {cpu_ms['load']:>9.2f}"
                    f" {scheduled_events:>9}"
                )  # fmt: skip
        finally:
            if scheduler is not None:
                scheduler.terminate()
                try:
                    scheduler.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    scheduler.kill()
            apiserver.stop()


async def count_scheduled_events(client: Client, expected: int, settle: float = 10.0) -> int:
    """The Scheduled Events the scheduler wrote (they trail the bindings by a moment): a bound pod
    without its Event would be a cheaper, wrong, figure."""
    deadline = time.monotonic() + settle
    while True:
        events = (await client.list("events", "default")).items
        count = sum(1 for e in events if e.reason == "Scheduled")  # type: ignore[attr-defined]
        if count >= expected or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.5)


def phase_e2e(args: argparse.Namespace) -> None:
    print(
        f"\n## 4. End to end: apiserver (SQLite, synchronous={args.sqlite_synchronous}) and scheduler as"
        f" processes, {args.pods} pods created 64 at a time while the scheduler runs; the load generator"
        " creates them by unary Create calls, then (second row) on one Pipeline stream"
    )
    floor = measure_grpc_floor()
    print(
        f"floor, same run: a bare gRPC server spends {floor.server_cpu_ms:.3f} ms CPU per unary call"
        f" ({floor.calls_per_second:.0f} calls/s). The scheduler sends its bindings and Events on its"
        " Pipeline stream; with unary creates the apiserver pays that floor once per pod, at most"
        f" {1000 / floor.server_cpu_ms:.0f} creates/s for a one-process apiserver doing nothing else"
    )
    print(
        f"{'creates':>9} {'nodes':>6} {'bound':>12} {'pods/s':>9} {'bind rate':>11} {'create/s':>10} {'nodes/s':>9} {'vs 680':>10}"
        f" {'api ms/pod':>10} {'sch ms/pod':>10} {'load ms/pod':>10} {'Scheduled':>9}"
    )
    print(
        "(ms/pod: CPU milliseconds each process spent per bound pod: apiserver, scheduler, this load"
        " generator; Scheduled: the scheduler's Scheduled Events found afterwards)"
    )
    for nodes in args.node_counts:
        for pipelined in (False, True):
            asyncio.run(e2e_run(nodes, args.pods, args.e2e_budget, args.sqlite_synchronous, pipelined))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--nodes", default="1000,5000", help="comma-separated node counts")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per algorithm phase at most")
    parser.add_argument("--ablation-pods", type=int, default=2000, help="pods per ablation variant at most")
    parser.add_argument("--e2e-budget", type=float, default=300.0, help="seconds per end-to-end run at most")
    parser.add_argument("--sqlite-synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--only-e2e", action="store_true")
    args = parser.parse_args()
    args.node_counts = [int(n) for n in args.nodes.split(",") if n]
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores shared with other work)")
    if not args.only_e2e:
        phase_algorithm(args)
        phase_ablation(args)
        phase_workloads(args)
    if not args.skip_e2e:
        phase_e2e(args)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
