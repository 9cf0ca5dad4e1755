"""Benchmark: pod startup latency through the kubelet. 30 pods created at once on one node,
each measured from its creation to the moment a watch shows it Running (every container
started), beside the raw cost of the same containers and network done directly in the same
run (pause with network none + shareable IPC, the reference bridge/host-local CNI ADD, the
app container joining it, 30 at once from a thread pool), each measured from the burst's
start to its app container running.

Run as root: .venv/bin/python tests/bench/bench_kubelet.py [--pods 30] [--rounds 1]
It builds a node like the integration tests (tests/integration/kubelet/harness.py): a pkl-
network namespace with the CRI shim inside, the apiserver on 127.0.0.1, the kubelet; the
direct baseline runs its CNI plugin in the same namespace on its own bridge. Everything is
removed at the end."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "protos"), str(REPO / "cmd")]

import docker  # noqa: E402

from tests.integration.kubelet.harness import REFERENCE_PLUGINS, Node, container  # noqa: E402

DIRECT_LABEL = "io.pinnace.bench.kubelet"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Direct:
    def __init__(self, api: Any, node: Node) -> None:
        self.api, self.node = api, node
        self.tag = node.suffix
        self.net = {
            "cniVersion": "1.0.0",
            "name": f"pkl-bench-{self.tag}",
            "type": "bridge",
            "bridge": f"pkb{self.tag}",
            "isGateway": True,
            "ipam": {
                "type": "host-local",
                "subnet": "10.244.251.0/24",
                "dataDir": str(node.tmp / "direct-ipam"),
            },
        }

    def cni(self, command: str, container_id: str, netns: str) -> None:
        env = {
            "CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0", "CNI_PATH": str(REFERENCE_PLUGINS), "PATH": os.environ["PATH"],
        }  # fmt: skip
        subprocess.run(
            ["nsenter", f"--net=/var/run/netns/{self.node.netns}", str(REFERENCE_PLUGINS / "bridge")],
            input=json.dumps(self.net).encode(), env=env, check=True, capture_output=True,
        )  # fmt: skip

    def pod(self, i: int) -> tuple[str, str]:
        labels = {DIRECT_LABEL: self.tag}
        pause = self.api.create_container_from_config(
            {"Image": "pinnace/pause:1.0", "Labels": labels, "Hostname": f"direct{i}",
             "HostConfig": {"NetworkMode": "none", "IpcMode": "shareable"}},
            name=f"pkl-bench-pause-{self.tag}-{i}",
        )["Id"]  # fmt: skip
        self.api.start(pause)
        pid = self.api.inspect_container(pause)["State"]["Pid"]
        self.cni("ADD", pause, f"/proc/{pid}/ns/net")
        app = self.api.create_container_from_config(
            {"Image": "pinnace/busybox:1.0", "Labels": labels, "Entrypoint": ["sleep"], "Cmd": ["3600"],
             "HostConfig": {"NetworkMode": f"container:{pause}", "IpcMode": f"container:{pause}"}},
            name=f"pkl-bench-app-{self.tag}-{i}",
        )["Id"]  # fmt: skip
        self.api.start(app)
        return pause, app

    def burst(self, count: int) -> tuple[list[float], list[tuple[str, str]]]:
        start = time.monotonic()

        def one(i: int) -> tuple[float, tuple[str, str]]:
            ids = self.pod(i)
            return time.monotonic() - start, ids

        with ThreadPoolExecutor(max_workers=count) as pool:
            results = list(pool.map(one, range(count)))
        return [r[0] for r in results], [r[1] for r in results]

    def cleanup(self, pods: list[tuple[str, str]]) -> None:
        for pause, app in pods:
            try:
                pid = self.api.inspect_container(pause)["State"]["Pid"]
                self.cni("DEL", pause, f"/proc/{pid}/ns/net")
            except Exception as exc:
                print(f"direct cleanup: {exc}", file=sys.stderr)
            for cid in (app, pause):
                self.api.remove_container(cid, force=True)


async def kubelet_burst(node: Node, count: int, round_: int) -> list[float]:
    client = node.client
    assert client is not None
    names = [f"bench-{round_}-{i}" for i in range(count)]
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    listed = await client.list("pods", "default")

    async def watch() -> None:
        async for event in client.watch("pods", "default", resource_version=listed.resource_version):
            pod = event.obj
            name = pod.metadata.name
            if (
                name in created
                and name not in running
                and pod.status.phase == "Running"
                and all(s.state.HasField("running") for s in pod.status.container_statuses)
            ):
                running[name] = time.monotonic()
                if len(running) == count:
                    return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)

    async def create(name: str) -> None:
        created[name] = time.monotonic()
        await client.create(node.pod(name, container("c", "sleep", "3600")))

    await asyncio.gather(*(create(n) for n in names))
    await asyncio.wait_for(watcher, 300)
    latencies = [running[n] - created[n] for n in names]
    await asyncio.gather(*(client.delete("pods", n, "default") for n in names))
    for _ in range(600):
        if not node.containers(running_only=False):
            break
        await asyncio.sleep(0.5)
    return latencies


async def run(args: argparse.Namespace) -> dict[str, Any]:
    api = docker.from_env().api
    node = Node(docker.from_env())
    report: dict[str, Any] = {"pods": args.pods, "rounds": []}
    try:
        await node.start()
        await node.wait_node(
            lambda n: any(c.type == "Ready" and c.status == "True" for c in n.status.conditions), 60
        )
        direct = Direct(api, node)
        await kubelet_burst(node, 3, -1)  # warm-up
        _, warm = direct.burst(3)
        direct.cleanup(warm)
        for r in range(args.rounds):
            kubelet = await kubelet_burst(node, args.pods, r)
            raw, pods = direct.burst(args.pods)
            direct.cleanup(pods)
            entry = {
                "kubelet_p50": percentile(kubelet, 0.5), "kubelet_p99": percentile(kubelet, 0.99),
                "direct_p50": percentile(raw, 0.5), "direct_p99": percentile(raw, 0.99),
            }  # fmt: skip
            entry["ratio_p50"] = entry["kubelet_p50"] / entry["direct_p50"]
            entry["ratio_p99"] = entry["kubelet_p99"] / entry["direct_p99"]
            report["rounds"].append(entry)
            print(json.dumps(entry), flush=True)
    finally:
        for c in api.containers(all=True, filters={"label": f"{DIRECT_LABEL}={node.suffix}"}):
            api.remove_container(c["Id"], force=True)
        await node.destroy()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_kubelet: run as root (it creates a network namespace and containers)", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
