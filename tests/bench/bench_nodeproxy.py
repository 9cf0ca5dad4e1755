"""Benchmark: the apiserver's NodeProxy against the same calls made straight to the kubelet's
Node API in the same run (both over TLS with the apiserver's kubelet-client certificate), and
the raw Docker exec under both:

- exec round trip: `true` in a running container, sequentially (p50/p99 over --execs);
- port-forward upload: --mib MiB sent into a pod that discards them (`nc -l -p 9000 >
  /dev/null`), timed until the pod closes the connection after ours;
- logs: the whole log of a pod that wrote --log-mib MiB, read once.

Run as root: .venv/bin/python tests/bench/bench_nodeproxy.py [--execs 30] [--mib 32] [--log-mib 16]
It builds a node like the integration tests (tests/integration/kubelet/harness.py: a pkl-
network namespace with the CRI shim, the apiserver and kubelet programs on 127.0.0.1, the
Node's InternalIP 127.0.0.1) and removes everything at the end."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "protos"), str(REPO / "cmd")]

import docker  # noqa: E402
import grpc  # noqa: E402

from pinnace.kubelet.v1 import kubelet_pb2 as kpb  # noqa: E402
from pinnace.kubelet.v1 import kubelet_pb2_grpc as kpb_grpc  # noqa: E402
from services.apiserver.auth.bootstrap_files import BootstrapPlan, bootstrap  # noqa: E402
from services.machinery import pki  # noqa: E402
from tests.integration.kubelet.harness import Node, container, running  # noqa: E402

CHUNK = 32 * 1024
# nc's stdin never ends (so it never half-closes the connection first); it exits when ours does.
SINK = "sleep 3600 | nc -l -p 9000 > /dev/null; sleep 3600"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(count: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


async def messages(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def upload(
    send: Callable[[bytes], Awaitable[None]], close: Callable[[], Awaitable[None]], mib: int
) -> None:
    block = b"x" * CHUNK
    for _ in range(mib * 1024 * 1024 // CHUNK):
        await send(block)
    await close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    pki_root = Path(tempfile.mkdtemp(prefix="pkl-bench-pki-"))
    bootstrap(BootstrapPlan(pki_root, "127.0.0.1:6443"))
    pki_dir = pki_root / "pki"
    node = Node(
        docker.from_env(),
        node_ip="127.0.0.1",
        node_api_args=["--client-ca-file", str(pki_dir / "ca.crt")],
        apiserver_args=[
            "--kubelet-client-certificate", str(pki_dir / "apiserver-kubelet-client.crt"),
            "--kubelet-client-key", str(pki_dir / "apiserver-kubelet-client.key"),
        ],
    )  # fmt: skip
    report: dict[str, Any] = {}
    try:
        client = await node.start()
        await client.create(node.pod("sleeper", container("c", "sleep", "3600")))
        logger = f"head -c {args.log_mib * 1024 * 1024} /dev/zero | tr '\\0' 'a' | fold -w 99; sleep 3600"
        await client.create(node.pod("logger", container("c", "sh", "-c", logger)))
        for name in ("sleeper", "logger"):
            await node.wait_pod(name, running, timeout=120)
        await asyncio.sleep(3)  # the logger finishes writing
        pair = pki.KeyPair.read(pki_dir, "apiserver-kubelet-client")
        credentials = grpc.ssl_channel_credentials(
            (node.root_dir / "pki" / "kubelet.crt").read_bytes(), pair.key_pem, pair.cert_pem
        )
        channel = grpc.aio.secure_channel(
            f"127.0.0.1:{node.node_api_port}",
            credentials,
            options=[("grpc.max_receive_message_length", 1 << 24)],
        )
        kubelet = kpb_grpc.NodeAPIStub(channel)
        ref = kpb.PodRef(namespace="default", name="sleeper")

        # exec round trips
        async def via_apiserver() -> None:
            session = await client.node_proxy.exec("sleeper", ["true"])
            assert (await session.wait())[2] == 0

        async def via_kubelet() -> None:
            start = kpb.ExecStart(pod=ref, container="c", command=["true"])
            outputs = [o async for o in kubelet.Exec(messages(kpb.ExecInput(start=start)))]
            assert outputs[-1].exit_code == 0

        api = docker.from_env().api
        sleeper = await client.get("pods", "sleeper", "default")
        container_id = sleeper.status.container_statuses[0].container_id.split("://", 1)[1]

        async def via_docker() -> None:
            def blocking() -> None:
                created = api.exec_create(container_id, ["true"])
                api.exec_start(created["Id"])
                assert api.exec_inspect(created["Id"])["ExitCode"] == 0

            await asyncio.get_running_loop().run_in_executor(None, blocking)

        for call in (via_apiserver, via_kubelet, via_docker):
            await timed(3, call)  # warm-up
        execs = {name: await timed(args.execs, call) for name, call in
                 (("apiserver", via_apiserver), ("kubelet", via_kubelet), ("docker", via_docker))}  # fmt: skip
        report["exec"] = {
            name: {"p50_ms": percentile(s, 0.5) * 1000, "p99_ms": percentile(s, 0.99) * 1000}
            for name, s in execs.items()
        }
        report["exec"]["ratio_p50_apiserver_to_kubelet"] = (
            report["exec"]["apiserver"]["p50_ms"] / report["exec"]["kubelet"]["p50_ms"]
        )
        print(json.dumps({"exec": report["exec"]}), flush=True)

        # port-forward upload, each into a fresh `nc -l`
        async def sink(name: str) -> None:
            await client.create(node.pod(name, container("c", "sh", "-c", SINK)))
            await node.wait_pod(name, running, timeout=120)
            await asyncio.sleep(0.5)

        await sink("sink-a")
        start = time.perf_counter()
        stream = await client.node_proxy.port_forward_stream("sink-a", 9000)
        await upload(stream.send, stream.close_write, args.mib)
        _ = [d async for d in stream.received()]
        through_apiserver = time.perf_counter() - start

        await sink("sink-b")
        start = time.perf_counter()
        call = kubelet.PortForward()
        await call.write(
            kpb.PortForwardInput(
                start=kpb.PortForwardStart(pod=kpb.PodRef(namespace="default", name="sink-b"), port=9000)
            )
        )

        async def send(data: bytes) -> None:
            await call.write(kpb.PortForwardInput(data=data))

        await upload(send, call.done_writing, args.mib)
        _ = [m async for m in call]
        direct = time.perf_counter() - start
        report["port_forward_mib_s"] = {
            "apiserver": args.mib / through_apiserver,
            "kubelet": args.mib / direct,
        }
        print(json.dumps({"port_forward_mib_s": report["port_forward_mib_s"]}), flush=True)

        # logs
        start = time.perf_counter()
        size = sum([len(c) async for c in client.node_proxy.pod_logs("logger")])
        through_apiserver = time.perf_counter() - start
        start = time.perf_counter()
        request = kpb.ContainerLogsRequest(pod=kpb.PodRef(namespace="default", name="logger"), container="c")
        direct_size = sum([len(c.data) async for c in kubelet.ContainerLogs(request)])
        direct = time.perf_counter() - start
        assert size == direct_size >= args.log_mib * 1024 * 1024
        mib = size / (1024 * 1024)
        report["logs_mib_s"] = {"apiserver": mib / through_apiserver, "kubelet": mib / direct}
        print(json.dumps({"logs_mib_s": report["logs_mib_s"]}), flush=True)
        await channel.close()
    finally:
        await node.destroy()
        shutil.rmtree(pki_root, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--execs", type=int, default=30)
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--log-mib", type=int, default=16)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_nodeproxy: run as root (it creates a network namespace and containers)", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
