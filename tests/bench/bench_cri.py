"""Benchmark: a pod (RunPodSandbox + CreateContainer + StartContainer) through the CRI shim,
beside the same work done directly with the docker SDK and the same reference CNI plugins,
interleaved in the same run so the ratio is meaningful on a noisy machine.

Run as root: .venv/bin/python tests/bench/bench_cri.py [--pods 30]
It creates its own "host" network namespace and re-executes itself inside it, so the bridge,
veths and IP leases live there; everything is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "protos"), str(REPO / "cmd")]

import docker  # noqa: E402
import grpc  # noqa: E402

from pinnace.cri.v1 import api_pb2 as cri  # noqa: E402
from pinnace.cri.v1 import api_pb2_grpc as cri_grpc  # noqa: E402

PLUGINS = Path("/usr/lib/cni")
NODE_LABEL = "io.pinnace.cri.node"
BENCH_LABEL = "pcri-bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def conflist(name: str, bridge: str, subnet: str, data_dir: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipam": {"type": "host-local", "subnet": subnet, "dataDir": str(data_dir)},
            }
        ],
    }


class Direct:
    """The baseline: what the shim does, by hand: pause (network none, shareable IPC), CNI ADD
    by executing the bridge plugin, app container joining network and IPC."""

    def __init__(self, api: Any, net: dict[str, Any], tag: str) -> None:
        self.api, self.net, self.tag = api, net, tag

    def pod(self, i: int) -> tuple[str, str]:
        labels = {BENCH_LABEL: self.tag}
        pause = self.api.create_container_from_config(
            {
                "Image": "pinnace/pause:1.0",
                "Labels": labels,
                "Hostname": f"direct{i}",
                "HostConfig": {"NetworkMode": "none", "IpcMode": "shareable"},
            },
            name=f"pcri-bench-direct-pause-{self.tag}-{i}",
        )["Id"]
        self.api.start(pause)
        pid = self.api.inspect_container(pause)["State"]["Pid"]
        self.cni("ADD", pause, f"/proc/{pid}/ns/net")
        app = self.api.create_container_from_config(
            {
                "Image": "pinnace/busybox:1.0",
                "Labels": labels,
                "Entrypoint": ["sleep"],
                "Cmd": ["3600"],
                "HostConfig": {"NetworkMode": f"container:{pause}", "IpcMode": f"container:{pause}"},
            },
            name=f"pcri-bench-direct-app-{self.tag}-{i}",
        )["Id"]
        self.api.start(app)
        return pause, app

    def cni(self, command: str, container_id: str, netns: str) -> None:
        plugin = self.net["plugins"][0]
        config = {**plugin, "cniVersion": self.net["cniVersion"], "name": self.net["name"]}
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(PLUGINS),
            "PATH": os.environ["PATH"],
        }
        subprocess.run(
            [str(PLUGINS / plugin["type"])],
            input=json.dumps(config).encode(),
            env=env,
            check=True,
            capture_output=True,
        )

    def remove(self, pause: str, app: str) -> None:
        self.api.remove_container(app, force=True)
        pid = self.api.inspect_container(pause)["State"]["Pid"]
        self.cni("DEL", pause, f"/proc/{pid}/ns/net")
        self.api.remove_container(pause, force=True)


def shim_pod(rt: cri_grpc.RuntimeServiceStub, i: int, log_root: Path) -> str:
    uid = secrets.token_hex(8)
    pod = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=f"bench{i}", uid=uid, namespace="bench"),
        hostname=f"bench{i}",
        log_directory=str(log_root / f"bench_bench{i}_{uid}"),
    )
    sandbox_id = rt.RunPodSandbox(cri.RunPodSandboxRequest(config=pod)).pod_sandbox_id
    container = cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name="app"),
        image=cri.ImageSpec(image="pinnace/busybox:1.0"),
        command=["sleep"],
        args=["3600"],
        log_path="app/0.log",
    )
    container_id = rt.CreateContainer(
        cri.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=container, sandbox_config=pod)
    ).container_id
    rt.StartContainer(cri.StartContainerRequest(container_id=container_id))
    return sandbox_id


def inner(args: argparse.Namespace) -> int:
    tmp = Path(args.tmp)
    tag = args.tag
    api = docker.APIClient(version="1.41")
    net = json.loads((tmp / "net.d" / "10-bench.conflist").read_text())
    direct_net = conflist(f"{net['name']}-direct", f"pcrd{tag}", "10.244.251.0/24", tmp / "ipam")
    direct = Direct(api, direct_net, tag)
    env = dict(os.environ, PINNACE_LOG_LEVEL="WARNING")
    shim = subprocess.Popen(
        [
            sys.executable, "-m", "pinnace_cmd.cri_docker",
            "--socket", str(tmp / "cri.sock"),
            "--cni-conf-dir", str(tmp / "net.d"),
            "--cni-bin-dir", str(PLUGINS),
            "--cni-cache-dir", str(tmp / "cache"),
            "--node-name", f"pcri-bench-{tag}",
        ],
        env=env,
    )  # fmt: skip
    shim_times: list[float] = []
    direct_times: list[float] = []
    sandboxes: list[str] = []
    direct_pods: list[tuple[str, str]] = []
    try:
        channel = grpc.insecure_channel(f"unix://{tmp / 'cri.sock'}")
        grpc.channel_ready_future(channel).result(timeout=20)
        rt = cri_grpc.RuntimeServiceStub(channel)
        rt.Version(cri.VersionRequest())
        for i in range(args.warmup + args.pods):
            started = time.perf_counter()
            sandboxes.append(shim_pod(rt, i, tmp / "pods"))
            shim_elapsed = time.perf_counter() - started
            started = time.perf_counter()
            direct_pods.append(direct.pod(i))
            direct_elapsed = time.perf_counter() - started
            if i >= args.warmup:
                shim_times.append(shim_elapsed)
                direct_times.append(direct_elapsed)
        for sandbox_id in sandboxes:
            rt.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
            rt.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
        for pause, app in direct_pods:
            direct.remove(pause, app)
        channel.close()
    finally:
        shim.terminate()
        shim.wait(10)
        for c in api.containers(all=True, filters={"label": [f"{NODE_LABEL}=pcri-bench-{tag}"]}):
            api.remove_container(c["Id"], force=True)
        for c in api.containers(all=True, filters={"label": [f"{BENCH_LABEL}={tag}"]}):
            api.remove_container(c["Id"], force=True)
    report = {
        "pods": args.pods,
        "shim_p50": percentile(shim_times, 0.5),
        "shim_p99": percentile(shim_times, 0.99),
        "direct_p50": percentile(direct_times, 0.5),
        "direct_p99": percentile(direct_times, 0.99),
        "shim_mean": statistics.mean(shim_times),
        "direct_mean": statistics.mean(direct_times),
    }
    report["ratio_p50"] = report["shim_p50"] / report["direct_p50"]
    report["ratio_p99"] = report["shim_p99"] / report["direct_p99"]
    print(json.dumps(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        return inner(args)
    if os.geteuid() != 0:
        print("bench_cri: run as root (it creates a network namespace and containers)", file=sys.stderr)
        return 2
    tag = secrets.token_hex(3)
    netns = f"pcri-bench-{tag}"
    tmp = Path(tempfile.mkdtemp(prefix="pcri-bench-"))
    (tmp / "net.d").mkdir()
    (tmp / "net.d" / "10-bench.conflist").write_text(
        json.dumps(conflist(f"pcri-bench-{tag}", f"pcrb{tag}", "10.244.250.0/24", tmp / "ipam"))
    )
    try:
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", netns, "route", "add", "unreachable", "10.244.0.0/16"], check=True)
        env = dict(os.environ, PYTHONPATH=f"{REPO}:{REPO / 'protos'}:{REPO / 'cmd'}")
        out = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, __file__, "--inner", "--tmp", str(tmp), "--tag", tag,
             "--pods", str(args.pods), "--warmup", str(args.warmup)],
            env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    report = json.loads(out.strip().splitlines()[-1])
    print(f"CRI shim pod start ({report['pods']} pods, sequential, interleaved with the baseline)")
    print(f"  shim   p50 {report['shim_p50'] * 1000:7.1f} ms   p99 {report['shim_p99'] * 1000:7.1f} ms")
    print(f"  direct p50 {report['direct_p50'] * 1000:7.1f} ms   p99 {report['direct_p99'] * 1000:7.1f} ms")
    print(f"  ratio  p50 {report['ratio_p50']:.3f}   p99 {report['ratio_p99']:.3f}   (goal <= 1.2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
