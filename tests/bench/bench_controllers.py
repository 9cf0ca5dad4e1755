"""Controller-manager figures (issue 8), each beside a floor measured in the same run.

  .venv/bin/python -m tests.bench.bench_controllers [--replicas 100] [--services 1000] [--nodes 20]

The apiserver runs in its own process (in-process APIServer in a child, SQLite NORMAL); the
controller-manager (the real ControllerManager, no leader election) and a hollow cluster run in
this one. Hollow nodes are Node objects whose Leases are renewed and whose pods a hollow
kubelet binds (round robin over live nodes), reports Running and Ready, and confirms deletions;
a dead hollow node stops all three.

- rollout: a Deployment of R replicas created, then rolled to a new image; time until every
  replica is updated and available. Floor: R pods created straight through the API and
  reported Ready by the same hollow kubelet (what any controller must at least wait for).
- endpoints: S services with one pod each; a pod's Ready flips, latency until its service's
  Endpoints show it, p50/p99. Floor: the same status write seen by a plain pod watch.
  Also the Endpoints controller's work per pod event (syncs and CPU time) at S/10 and S
  services: O(changed) means both stay flat as S grows.
- node failure: a node's Lease stops (grace 3 s, eviction timeout 2 s); time until its pods
  are replaced on live nodes and Ready.
Every phase is bounded by --timeout seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing
import os
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pinnace.api.coordination.v1 import coordination_pb2
from pinnace.api.core.v1 import core_pb2
from services.client.client import Client
from services.client.errors import APIStatusError, ConflictError, NotFoundError
from services.client.informer import Informer
from services.controllers.base import Settings
from services.controllers.endpoints import EndpointsController, build_subsets
from services.controllers.manager import ControllerManager
from services.controllers.podutil import now_ts
from services.machinery import codec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_apiserver(data_dir: str, port: int) -> None:
    from services.apiserver.server import APIServer, Config

    async def main() -> None:
        server = APIServer(
            Config(
                listen=f"127.0.0.1:{port}",
                sqlite_path=str(Path(data_dir) / "state.db"),
                sqlite_synchronous="NORMAL",
                service_cidr="10.96.0.0/16",
            )
        )
        await server.start()
        await asyncio.Event().wait()

    asyncio.run(main())


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fmt(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:8.1f} ms   p99 {pct(values, 99) * 1000:8.1f} ms   (n={len(values)})"


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.05) -> float:
    start = time.perf_counter()
    while not await predicate():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("benchmark phase timed out")
        await asyncio.sleep(interval)
    return time.perf_counter() - start


class HollowCluster:
    """Nodes that heartbeat and a kubelet that runs their pods, with no containers."""

    def __init__(self, client: Client, nodes: int) -> None:
        self.client = client
        self.live = [f"hollow-{i}" for i in range(nodes)]
        self.dead: set[str] = set()
        self.informer = Informer(client, "pods")
        self.informer.add_handlers(on_add=self._event, on_update=lambda _o, n: self._event(n))
        self._rr = itertools.count()
        self._ips = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._heart: asyncio.Task[None] | None = None
        self.sem = asyncio.Semaphore(64)

    async def start(self) -> None:
        for name in self.live:
            node = core_pb2.Node()
            node.metadata.name = name
            condition = node.status.conditions.add(type="Ready", status="True")
            condition.last_heartbeat_time.CopyFrom(now_ts())
            await self.client.create(node)
            lease = coordination_pb2.Lease()
            lease.metadata.name, lease.metadata.namespace = name, "kube-node-lease"
            lease.spec.holder_identity = name
            lease.spec.renew_time.CopyFrom(now_ts())
            await self.client.create(lease)
        self.informer.start()
        await self.informer.wait_synced(30)
        self._heart = asyncio.create_task(self._heartbeat())

    async def stop(self) -> None:
        if self._heart is not None:
            self._heart.cancel()
        await self.informer.stop()
        for task in list(self._tasks):
            task.cancel()

    async def _heartbeat(self) -> None:
        """Every hollow kubelet renews its Lease and, when the node controller marked its node
        Unknown, posts Ready again, as a kubelet's status loop does."""
        while True:
            await asyncio.sleep(0.5)
            await asyncio.gather(*(self._beat(n) for n in self.live if n not in self.dead))

    async def _beat(self, name: str) -> None:
        with contextlib.suppress(APIStatusError):
            lease = await self.client.get("leases", name, "kube-node-lease")
            lease.spec.renew_time.CopyFrom(now_ts())  # type: ignore[attr-defined]
            await self.client.update(lease)
            node = await self.client.get("nodes", name)
            ready = next(c for c in node.status.conditions if c.type == "Ready")  # type: ignore[attr-defined]
            if ready.status != "True":
                ready.status, ready.reason = "True", "KubeletReady"
                ready.last_heartbeat_time.CopyFrom(now_ts())
                await self.client.update_status(node)

    def _event(self, pod: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(pod))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, pod: core_pb2.Pod) -> None:
        node = pod.spec.node_name
        if node in self.dead:
            return
        async with self.sem:
            with contextlib.suppress(APIStatusError):
                if pod.metadata.HasField("deletion_timestamp"):
                    if node:
                        await self.client.delete(
                            "pods", pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0
                        )
                    return
                if not node:
                    alive = [n for n in self.live if n not in self.dead]
                    await self.client.bind(
                        pod.metadata.name, pod.metadata.namespace, alive[next(self._rr) % len(alive)]
                    )
                    return
                if pod.status.phase == "Pending":
                    await self.set_ready(pod.metadata.namespace, pod.metadata.name, True)

    async def set_ready(self, namespace: str, name: str, ready: bool) -> None:
        for _ in range(10):
            try:
                pod = await self.client.get("pods", name, namespace)
            except NotFoundError:
                return
            assert isinstance(pod, core_pb2.Pod)
            if pod.spec.node_name in self.dead:
                return
            pod.status.phase = "Running"
            if not pod.status.pod_ip:
                n = next(self._ips)
                pod.status.pod_ip = f"10.244.{n // 250}.{n % 250 + 2}"
            del pod.status.conditions[:]
            pod.status.conditions.add(
                type="Ready", status="True" if ready else "False", last_transition_time=now_ts()
            )
            try:
                await self.client.update_status(pod)
                return
            except ConflictError:
                continue


def deployment(name: str, replicas: int, image: str) -> Any:
    return codec.from_yaml(f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: "{image}"}}]}}
""")


def bare_pod(name: str, labels: dict[str, str]) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = name, "default"
    pod.metadata.labels.update(labels)
    pod.spec.containers.add(name="c", image="pinnace/busybox:1.0")
    return pod


async def gather_bounded(coros: list[Awaitable[Any]], limit: int = 50) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(c: Awaitable[Any]) -> None:
        async with sem:
            await c

    await asyncio.gather(*(one(c) for c in coros))


# ---------------------------------------------------------------------- phases


async def bench_rollout(client: Client, cluster: HollowCluster, replicas: int, timeout: float) -> None:
    # Floor: the same number of pods, straight through the API, made Ready by the same kubelet.
    start = time.perf_counter()
    await gather_bounded([client.create(bare_pod(f"floor-{i}", {"floor": "yes"})) for i in range(replicas)])

    async def floor_ready() -> bool:
        pods = (await client.list("pods", "default", label_selector="floor=yes")).items
        return sum(1 for p in pods if p.status.phase == "Running") == replicas

    await until(floor_ready, timeout)
    floor = time.perf_counter() - start
    await gather_bounded(
        [client.delete("pods", f"floor-{i}", "default", grace_period_seconds=0) for i in range(replicas)]
    )

    async def available(image: str) -> bool:
        d = await client.get("deployments", "bench", "default")
        s = d.status  # type: ignore[attr-defined]
        current = d.spec.template.spec.containers[0].image == image  # type: ignore[attr-defined]
        return (
            current
            and s.observed_generation == d.metadata.generation  # type: ignore[attr-defined]
            and s.updated_replicas == replicas
            and s.available_replicas == replicas
            and s.replicas == replicas
        )

    start = time.perf_counter()
    await client.create(deployment("bench", replicas, "pinnace/busybox:1.0"))
    await until(lambda: available("pinnace/busybox:1.0"), timeout)
    created = time.perf_counter() - start
    start = time.perf_counter()
    await client.patch(
        "deployments",
        "bench",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "pinnace/busybox:2.0"}]}}}},
        "default",
    )
    await until(lambda: available("pinnace/busybox:2.0"), timeout)
    rolled = time.perf_counter() - start
    pods = (await client.list("pods", "default", label_selector="app=bench")).items
    live = [p for p in pods if not p.metadata.HasField("deletion_timestamp")]  # type: ignore[attr-defined]
    print(f"rollout ({replicas} replicas, maxSurge/maxUnavailable 25%)")
    print(f"  floor: {replicas} pods created + Ready, no controller   {floor:7.2f} s")
    print(f"  deployment created -> all available              {created:7.2f} s")
    print(
        f"  rollout to a new image -> all updated+available   {rolled:7.2f} s   ({rolled / floor:.1f}x floor)"
    )
    print(f"  live pods afterwards: {len(live)} (expected {replicas})")
    await client.delete("deployments", "bench", "default")


async def make_services(
    client: Client, cluster: HollowCluster, count: int, prefix: str, timeout: float
) -> None:
    def service(i: int) -> Any:
        return codec.from_yaml(f"""
apiVersion: v1
kind: Service
metadata: {{name: {prefix}-{i}, namespace: default}}
spec: {{selector: {{svc: {prefix}-{i}}}, ports: [{{port: 80}}]}}
""")

    # Few at a time: the apiserver's ClusterIP allocator is a compare-and-swap bitmap.
    await gather_bounded([client.create(service(i)) for i in range(count)], limit=4)
    await gather_bounded(
        [client.create(bare_pod(f"{prefix}-pod-{i}", {"svc": f"{prefix}-{i}"})) for i in range(count)]
    )

    async def all_running() -> bool:
        pods = (
            await client.list("pods", "default", label_selector=f"svc in ({prefix}-0,{prefix}-{count - 1})")
        ).items
        if len(pods) < 2:
            return False
        everything = (await client.list("pods", "default")).items
        mine = [p for p in everything if p.metadata.name.startswith(f"{prefix}-pod-")]  # type: ignore[attr-defined]
        return sum(1 for p in mine if p.status.phase == "Running") == count  # type: ignore[attr-defined]

    await until(all_running, timeout, interval=0.25)


async def bench_endpoints(
    client: Client,
    cluster: HollowCluster,
    manager: ControllerManager,
    services: int,
    samples: int,
    timeout: float,
) -> None:
    endpoints_ctl = next(c for c in manager.controllers if isinstance(c, EndpointsController))
    pods_seen: dict[str, asyncio.Future[float]] = {}
    eps_seen: dict[str, asyncio.Future[float]] = {}
    watchers = [Informer(client, "pods"), Informer(client, "endpoints")]

    def on_pod(_old: Any, new: Any) -> None:
        fut = pods_seen.get(new.metadata.name)
        if (
            fut is not None
            and not fut.done()
            and any(c.type == "Ready" and c.status == "True" for c in new.status.conditions)
        ):
            fut.set_result(time.perf_counter())

    def on_ep(_old: Any, new: Any) -> None:
        fut = eps_seen.get(new.metadata.name)
        if fut is not None and not fut.done() and any(s.addresses for s in new.subsets):
            fut.set_result(time.perf_counter())

    watchers[0].add_handlers(on_update=on_pod)
    watchers[1].add_handlers(on_update=on_ep)
    for w in watchers:
        w.start()
        await w.wait_synced(60)

    results: list[tuple[int, float, float]] = []
    for size, prefix in ((services // 10, "small"), (services, "big")):
        await make_services(client, cluster, size, prefix, timeout)
        await asyncio.sleep(1.0)
        ep_lat: list[float] = []
        floor_lat: list[float] = []
        syncs_before, cpu_before = endpoints_ctl.syncs, endpoints_ctl.sync_seconds
        events = 0
        for i in range(min(samples, size)):
            name = f"{prefix}-pod-{i}"
            await cluster.set_ready("default", name, False)

            async def not_ready(n: str = name, svc: str = f"{prefix}-{i}") -> bool:
                ep = await client.get("endpoints", svc, "default")
                return not any(s.addresses for s in ep.subsets)  # type: ignore[attr-defined]

            await until(not_ready, timeout, interval=0.01)
            loop = asyncio.get_running_loop()
            pods_seen[name] = loop.create_future()
            eps_seen[f"{prefix}-{i}"] = loop.create_future()
            start = time.perf_counter()
            await cluster.set_ready("default", name, True)
            seen_pod = await asyncio.wait_for(pods_seen[name], timeout)
            seen_ep = await asyncio.wait_for(eps_seen[f"{prefix}-{i}"], timeout)
            floor_lat.append(seen_pod - start)
            ep_lat.append(seen_ep - start)
            events += 2
        syncs = endpoints_ctl.syncs - syncs_before
        wall = endpoints_ctl.sync_seconds - cpu_before
        results.append((size, syncs / events, wall / max(syncs, 1), compute_per_event(endpoints_ctl, prefix)))
        print(f"endpoints latency with {size} services (pod Ready -> Endpoints updated)")
        print(f"  floor (pod watch sees the status write): {fmt(floor_lat)}")
        print(f"  endpoints updated:                       {fmt(ep_lat)}")
    print("endpoints controller work per pod event (must stay flat as services grow)")
    for size, per_event, per_sync, compute in results:
        print(
            f"  {size:5d} services: {per_event:.2f} syncs/event, {compute * 1e6:6.1f} us to find the affected "
            f"services and rebuild the subsets, {per_sync * 1e3:5.1f} ms per sync including the Endpoints write"
        )
    for w in watchers:
        await w.stop()


def compute_per_event(ctl: EndpointsController, prefix: str, rounds: int = 2000) -> float:
    """The in-memory work of one pod event, without the API write: find the services that
    select the pod (label-pair index) and rebuild one service's subsets."""
    pod = ctl.pods.store.get(f"default/{prefix}-pod-0")
    svc = ctl.services.store.get(f"default/{prefix}-0")
    assert isinstance(pod, core_pb2.Pod) and isinstance(svc, core_pb2.Service)
    start = time.perf_counter()
    for _ in range(rounds):
        ctl.services_for(pod)
        build_subsets(svc, ctl._selected_pods(svc))
    return (time.perf_counter() - start) / rounds


async def bench_node_failure(client: Client, cluster: HollowCluster, timeout: float) -> None:
    await client.create(deployment("failover", 40, "pinnace/busybox:1.0"))

    async def spread() -> bool:
        pods = (await client.list("pods", "default", label_selector="app=failover")).items
        return sum(1 for p in pods if p.status.phase == "Running") == 40  # type: ignore[attr-defined]

    await until(spread, timeout)
    victim = cluster.live[0]
    pods = (await client.list("pods", "default", label_selector="app=failover")).items
    doomed = {p.metadata.name for p in pods if p.spec.node_name == victim}  # type: ignore[attr-defined]
    start = time.perf_counter()
    cluster.dead.add(victim)

    async def recovered() -> bool:
        pods = (await client.list("pods", "default", label_selector="app=failover")).items
        live = [
            p
            for p in pods
            if not p.metadata.HasField("deletion_timestamp")  # type: ignore[attr-defined]
            and p.spec.node_name != victim  # type: ignore[attr-defined]
            and p.status.phase == "Running"  # type: ignore[attr-defined]
        ]
        return len(live) == 40

    async def tainted() -> bool:
        node = await client.get("nodes", victim)
        return any(t.key == "node.kubernetes.io/unreachable" for t in node.spec.taints)  # type: ignore[attr-defined]

    await until(tainted, timeout, interval=0.02)
    taint_at = time.perf_counter() - start
    await until(recovered, timeout, interval=0.02)
    done_at = time.perf_counter() - start
    print(f"node failure ({len(doomed)} of 40 pods on the failed node; grace 3 s, eviction timeout 2 s)")
    print(f"  lease stops -> node tainted unreachable           {taint_at:7.2f} s")
    print(f"  lease stops -> all pods Running on other nodes    {done_at:7.2f} s   (floor: 5.0 s of timers)")


async def run(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        child = multiprocessing.get_context("spawn").Process(
            target=_serve_apiserver, args=(tmp, port), daemon=True
        )
        child.start()
        client = Client.connect(f"127.0.0.1:{port}", timeout=30)
        try:
            for _ in range(200):
                try:
                    await client.list("namespaces")
                    break
                except APIStatusError:
                    await asyncio.sleep(0.1)
            cluster = HollowCluster(client, args.nodes)
            await cluster.start()
            settings = Settings(
                node_monitor_period=0.5,
                node_monitor_grace_period=3.0,
                node_startup_grace_period=3.0,
                pod_eviction_timeout=2.0,
                eviction_rate=10.0,
            )
            names = ["endpoint", "replicaset", "deployment", "garbagecollector", "nodelifecycle"]
            manager = ControllerManager(client, settings, names, leader_elect=False)
            managed = asyncio.create_task(manager.run())
            await asyncio.sleep(1.0)
            print(
                f"bench_controllers  {time.strftime('%Y-%m-%d %H:%M')}  cpus={os.cpu_count()}  "
                f"load before {load_before[0]:.2f}"
            )
            await bench_rollout(client, cluster, args.replicas, args.timeout)
            await bench_endpoints(client, cluster, manager, args.services, args.samples, args.timeout)
            await bench_node_failure(client, cluster, args.timeout)
            print(f"load average after: {os.getloadavg()[0]:.2f}")
            managed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await managed
            await cluster.stop()
        finally:
            await client.close()
            child.terminate()
            child.join(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=100, help="Ready flips measured per service count")
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=180.0, help="bound of each phase, seconds")
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
