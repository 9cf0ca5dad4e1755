"""Apiserver figures (issue 3), each beside a baseline measured in the same run.

  .venv/bin/python -m tests.bench.bench_apiserver [--seconds 10] [--pods 10000] [--watchers 100]

- writes: ConfigMap create/update/delete at a sustained open-loop rate (default 200/s), p50/p99
  from the scheduled start of each request; floor: a bare SQLite insert+commit with the same
  durability (WAL, synchronous=FULL) at the same rate.
- reads: LIST of N pods served from the watch cache (resourceVersion=0) and GET p50/p99, beside a
  bare gRPC echo of the same payload size.
- watch: W concurrent watchers, latency from write acknowledgement to receipt, p50/p99.

The apiserver runs as its own process (the real program), the load generator in this one.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from pinnace.api.core.v1 import core_pb2
from pinnace.apiserver.v1 import apiserver_pb2
from services.client.client import Client
from services.machinery.envelope import wrap
from tests.integration.apiserver.process import ApiserverProcess, free_port


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fmt(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:7.2f} ms   p99 {pct(values, 99) * 1000:7.2f} ms   (n={len(values)})"


async def open_loop(rate: float, count: int, op: Callable[[int], Awaitable[None]]) -> list[float]:
    """Issue op(i) at t0 + i/rate regardless of completions; latency counts from the schedule."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    latencies: list[float] = []

    async def one(i: int) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        await op(i)
        latencies.append(loop.time() - scheduled)

    await asyncio.gather(*(one(i) for i in range(count)))
    return latencies


def config_map(name: str, value: str = "v") -> core_pb2.ConfigMap:
    cm = core_pb2.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = name, "default"
    cm.data["key"] = value * 64
    return cm


async def bench_writes(client: Client, rate: float, seconds: float) -> dict[str, list[float]]:
    count = int(rate * seconds)
    results: dict[str, list[float]] = {}

    async def create(i: int) -> None:
        await client.create(config_map(f"w-{i}"))

    async def update(i: int) -> None:
        await client.update(config_map(f"w-{i}", "u"))

    async def delete(i: int) -> None:
        await client.delete("configmaps", f"w-{i}", "default")

    for name, op in (("create", create), ("update", update), ("delete", delete)):
        results[name] = await open_loop(rate, count, op)
    return results


def sqlite_floor(path: Path, rate: float, seconds: float) -> list[float]:
    """A bare insert+commit per write, WAL + synchronous=FULL, at the same schedule."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, value BLOB)")
    payload = config_map("floor").SerializeToString()
    latencies = []
    start = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        time.sleep(max(0.0, scheduled - time.perf_counter()))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (name, value) VALUES (?, ?)", (f"w-{i}", payload))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - scheduled)
    conn.close()
    return latencies


async def load_pods(client: Client, count: int) -> None:
    semaphore = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        pod = core_pb2.Pod()
        pod.metadata.name, pod.metadata.namespace = f"pod-{i:05d}", "default"
        pod.metadata.labels.update({"app": f"app-{i % 50}", "tier": "bench"})
        pod.spec.node_name = f"node-{i % 100}"
        pod.spec.containers.add(name="c", image="pinnace/busybox:1.0", command=["serve", "8080"])
        async with semaphore:
            await client.create(pod)

    await asyncio.gather(*(one(i) for i in range(count)))


async def echo_baseline(payload_size: int, repeats: int) -> list[float]:
    """A bare gRPC echo returning payload_size bytes: the cost of moving the bytes alone."""
    payload = random.randbytes(payload_size)

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
        return payload

    server = grpc.aio.server(options=[("grpc.max_send_message_length", 1 << 30)])
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    times = []
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 1 << 30)]
    ) as channel:
        call = channel.unary_unary("/bench.Echo/Echo")
        for _ in range(repeats):
            start = time.perf_counter()
            await call(b"x")
            times.append(time.perf_counter() - start)
    await server.stop(0)
    return times


async def bench_reads(client: Client, pods: int) -> tuple[list[float], int, list[float]]:
    lists = []
    size = 0
    for _ in range(5):
        start = time.perf_counter()
        result = await client.list("pods", "default", resource_version="0")
        lists.append(time.perf_counter() - start)
        assert len(result.items) == pods
    response = apiserver_pb2.ListResponse(items=[wrap(p) for p in result.items])
    size = response.ByteSize()
    gets = []
    for _ in range(1000):
        name = f"pod-{random.randrange(pods):05d}"
        start = time.perf_counter()
        await client.get("pods", name, "default")
        gets.append(time.perf_counter() - start)
    return lists, size, gets


async def bench_watch(client: Client, watchers: int, writes: int, rate: float) -> list[float]:
    acked: dict[str, float] = {}
    latencies: list[float] = []
    ready = 0
    start_rv = (await client.list("configmaps", "watch-bench")).resource_version

    async def watcher() -> None:
        nonlocal ready
        received = 0
        stream = client.watch("configmaps", "watch-bench", resource_version=start_rv)
        ready += 1
        async for event in stream:
            now = time.perf_counter()
            name = event.obj.metadata.name
            while name not in acked:  # the ack may still be on its way back to the writer
                await asyncio.sleep(0)
            latencies.append(now - acked[name])
            received += 1
            if received == writes:
                return

    tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
    await asyncio.sleep(1.0)

    async def write(i: int) -> None:
        cm = config_map(f"watch-{i}")
        cm.metadata.namespace = "watch-bench"
        await client.create(cm)
        acked[cm.metadata.name] = time.perf_counter()

    await open_loop(rate, writes, write)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    return latencies


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        process = ApiserverProcess(Path(tmp), free_port())
        await process.start()
        client = Client.connect(process.address, timeout=60)
        try:
            print(
                f"== writes at {args.rate:.0f}/s for {args.seconds:.0f} s each (open loop, SQLite, FULL sync)"
            )
            writes = await bench_writes(client, args.rate, args.seconds)
            floor = await asyncio.to_thread(sqlite_floor, Path(tmp) / "floor.db", args.rate, args.seconds)
            for name, values in writes.items():
                print(f"  {name:<8} {fmt(values)}")
            print(f"  floor    {fmt(floor)}   <- bare SQLite insert+commit")

            print(f"== reads with {args.pods} pods")
            await load_pods(client, args.pods)
            lists, size, gets = await bench_reads(client, args.pods)
            echo_list = await echo_baseline(size, 5)
            echo_get = await echo_baseline(size // args.pods, 1000)
            print(
                f"  LIST (cache)  best {min(lists) * 1000:8.1f} ms  median {statistics.median(lists) * 1000:8.1f} ms"
                f"   payload {size / 1e6:.1f} MB"
            )
            print(
                f"  echo          best {min(echo_list) * 1000:8.1f} ms  median "
                f"{statistics.median(echo_list) * 1000:8.1f} ms   <- bare gRPC, same bytes"
            )
            print(f"  GET   {fmt(gets)}")
            print(f"  echo  {fmt(echo_get)}   <- bare gRPC, one pod's bytes")

            ns = core_pb2.Namespace()
            ns.metadata.name = "watch-bench"
            await client.create(ns)
            print(
                f"== watch: {args.watchers} watchers, {args.watch_writes} writes at {args.watch_rate:.0f}/s"
            )
            latencies = await bench_watch(client, args.watchers, args.watch_writes, args.watch_rate)
            print(f"  delivery {fmt(latencies)}   (write acknowledged -> event received)")
        finally:
            await client.close()
            process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--watch-writes", type=int, default=200)
    parser.add_argument("--watch-rate", type=float, default=50.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
