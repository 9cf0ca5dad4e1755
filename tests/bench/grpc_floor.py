"""The floor under every apiserver figure: what one gRPC call costs a Python server that does
nothing with it.

  .venv/bin/python -m tests.bench.grpc_floor [--calls 5000] [--parallel 64]

A bare grpc.aio server in its own process echoes an 800-byte payload (about a pod); this process
calls it with `--parallel` calls in flight, as the benchmarks' load generators do. The server's
CPU per call is the least any apiserver request can cost on this machine, so the benchmarks
print it beside their own figures, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

_SERVICE, _METHOD = "pinnace.bench.Echo", "Echo"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _serve(port_file: Path) -> None:
    server = grpc.aio.server()

    async def echo(request: bytes, context: object) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        _SERVICE, {_METHOD: grpc.unary_unary_rpc_method_handler(echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))
    await server.wait_for_termination()


@dataclass(frozen=True)
class Floor:
    calls_per_second: float
    server_cpu_ms: float  # CPU milliseconds the server spent per call


async def _call_all(port: int, pid: int, calls: int, parallel: int) -> Floor:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        method = channel.unary_unary(f"/{_SERVICE}/{_METHOD}")
        payload = b"x" * 800
        for _ in range(100):  # warm up
            await method(payload)
        pending = iter(range(calls))

        async def worker() -> None:
            for _ in pending:
                await method(payload)

        cpu_before, started = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(parallel)))
        elapsed = time.perf_counter() - started
        return Floor(calls / elapsed, 1000 * (cpu_seconds(pid) - cpu_before) / calls)


def measure(calls: int = 5000, parallel: int = 64, workdir: Path | None = None) -> Floor:
    """Start the echo server, call it, stop it; only 127.0.0.1 is used."""
    port_file = (workdir or Path("/tmp")) / f"grpc-floor-{os.getpid()}.port"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen([sys.executable, "-m", "tests.bench.grpc_floor", "--serve", str(port_file)])
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the echo server did not start")
            time.sleep(0.05)
        return asyncio.run(_call_all(int(port_file.read_text()), server.pid, calls, parallel))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        port_file.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(Path(args.serve)))
        return
    floor = measure(args.calls, args.parallel)
    print(
        f"bare gRPC echo: {floor.calls_per_second:.0f} calls/s, "
        f"server CPU {floor.server_cpu_ms:.3f} ms per call ({args.parallel} in flight)"
    )


if __name__ == "__main__":
    main()
