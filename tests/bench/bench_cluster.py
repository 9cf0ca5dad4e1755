"""Benchmark: the whole cluster. Two figures of issue 11, each beside a floor measured in the
same run.

1. Time to ready: the user's single-node path, `pinnace lab up --nodes 0 --master-agent`
   (one `pinnace server` with its local node, in lab namespaces) from nothing to a Ready
   Node and a demo pod (pinnace/busybox:1.0 `serve 80`, placed by the scheduler) Running and
   answering HTTP. Split into phases: lab namespaces built, apiserver answering, node Ready,
   pod Running, pod answering. Floor: the same container started directly with `docker run`
   (network none) until it answers HTTP inside its own network namespace, i.e. what is left
   without an orchestrator.
2. Idle footprint: the last run's cluster (server, local node, demo pod) left idle for
   --idle-seconds; RSS (and PSS) of the server process and every process it spawned, and
   their CPU % over the window from /proc/PID/stat (utime+stime of the living, cutime+cstime
   of the reaped). dockerd and containerd are reported apart, as context. Floor: a bare
   interpreter that imports grpc and every generated proto module, idle over the same window.

Run as root: .venv/bin/python tests/bench/bench_cluster.py [--runs 3] [--idle-seconds 300]
The lab is named `benchcluster` and is destroyed at the end, also on failure. Published
figures of other tools are printed as quotes, not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "protos"), str(REPO / "cmd")]

NAME = "benchcluster"  # lab names are 1-12 letters or digits
IMAGE = "pinnace/busybox:1.0"
POD = "web"
FLOOR_LABEL = "io.pinnace.bench.cluster"
# Quoted from the issue (published figures, other machines): not measured here.
ANCHORS_READY = {"k3d": 19.9, "kind": 33.0, "minikube": 50.8}
ANCHOR_IDLE_MB = {"k3s server+agent (SQLite)": 512.0}
GOAL_READY_S, GOAL_IDLE_MB = 15.0, 300.0
PHASES = ("namespaces", "apiserver", "node_ready", "pod_running", "pod_answering")
# What the floor interpreter imports: grpc and every generated module, like any component.
FLOOR_SCRIPT = """
import importlib, pathlib, sys, grpc
root = pathlib.Path(sys.argv[1])
for path in sorted(root.rglob("*_pb2*.py")):
    importlib.import_module(".".join(path.relative_to(root).with_suffix("").parts))
print("ready", flush=True)
sys.stdin.read()
"""


# ---------------------------------------------------------------------- pure helpers (unit-tested)


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/PID/stat this bench uses (proc(5))."""

    pid: int
    comm: str
    ppid: int
    ticks: int  # utime + stime + cutime + cstime: own CPU plus that of reaped children


def parse_stat(line: str) -> Stat:
    """Parse one /proc/PID/stat line. comm may hold spaces and parentheses, so the fields are
    counted from the last ')'."""
    head, sep, tail = line.rpartition(")")
    if not sep or " (" not in head:
        raise ValueError(f"not a /proc/PID/stat line: {line[:80]!r}")
    pid, _, comm = head.partition(" (")
    fields = tail.split()
    if len(fields) < 15:
        raise ValueError(f"short /proc/PID/stat line: {line[:80]!r}")
    # fields[0] is field 3 (state): ppid is 4, utime..cstime are 14..17
    return Stat(int(pid), comm, int(fields[1]), sum(int(f) for f in fields[11:15]))


def descendants(parents: Mapping[int, int], root: int) -> list[int]:
    """root and every process below it, from a pid -> ppid map."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in parents or pid == root:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return sorted(found)


def status_kib(text: str, key: str) -> int:
    """A `Key:  N kB` value of /proc/PID/status or smaps_rollup, in KiB (0 when absent)."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return int(value.split()[0])
    return 0


def cpu_percent(ticks: int, clock_ticks: int, seconds: float) -> float:
    """CPU time used over a window as a percentage of one core."""
    if seconds <= 0 or clock_ticks <= 0:
        raise ValueError("window and clock ticks must be positive")
    return 100.0 * ticks / clock_ticks / seconds


def summary(values: Iterable[float]) -> dict[str, float]:
    """Median and max: the figure and its worst case over the runs."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return {"median": statistics.median(ordered), "max": ordered[-1]}


def phase_durations(marks: Mapping[str, float], start: float) -> dict[str, float]:
    """Each phase's own duration, from the monotonic time each one ended."""
    out, previous = {}, start
    for phase in PHASES:
        out[phase] = marks[phase] - previous
        previous = marks[phase]
    return out


# ---------------------------------------------------------------------- /proc readers


def read_stat(pid: int) -> Stat | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError):
        return None


def all_stats() -> dict[int, Stat]:
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            stats[stat.pid] = stat
    return stats


def tree(root: int) -> list[Stat]:
    stats = all_stats()
    return [stats[p] for p in descendants({s.pid: s.ppid for s in stats.values()}, root) if p in stats]


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB; PSS is 0 when smaps_rollup cannot be read."""
    try:
        rss = status_kib(Path(f"/proc/{pid}/status").read_text(), "VmRSS")
    except OSError:
        return 0, 0
    try:
        pss = status_kib(Path(f"/proc/{pid}/smaps_rollup").read_text(), "Pss")
    except OSError:
        pss = 0
    return rss, pss


def footprint(pids: Iterable[int]) -> dict[str, float]:
    rss = pss = 0
    for pid in pids:
        r, p = memory_kib(pid)
        rss, pss = rss + r, pss + p
    return {"rss_mb": rss / 1024, "pss_mb": pss / 1024}


# ---------------------------------------------------------------------- time to ready

# Imported after the pure helpers' definitions so that they stay importable on their own.
from pinnace.api.core.v1 import core_pb2  # noqa: E402
from services.client.client import Client  # noqa: E402
from services.client.config import load as load_client_config  # noqa: E402
from services.lab import Lab, destroy  # noqa: E402
from services.lab.relay import Relay, open_in  # noqa: E402


class TimedLab(Lab):
    """Lab.up unchanged, with the monotonic time its steps end recorded in `marks`."""

    marks: dict[str, float] = {}

    def _network(self) -> None:
        super()._network()
        TimedLab.marks["namespaces"] = time.monotonic()

    def _join_token(self, timeout: float) -> Path:  # called once the apiserver answers
        TimedLab.marks["apiserver"] = time.monotonic()
        return super()._join_token(timeout)

    def wait_nodes_ready(self, timeout: float = 120.0) -> None:
        super().wait_nodes_ready(timeout)
        TimedLab.marks["node_ready"] = time.monotonic()


def demo_pod() -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = POD, "default"
    pod.metadata.labels["app"] = POD
    pod.spec.containers.add(
        name="web", image=IMAGE, command=["serve", "80"], image_pull_policy="IfNotPresent"
    )
    return pod


async def run_pod(lab: Lab, timeout: float) -> str:
    async with lab.api_client(timeout=5) as client:
        return await pod_ip(client, timeout)


async def pod_ip(client: Client, timeout: float, create: bool = True) -> str:
    """Create the demo pod (retrying while the cluster is still making its default service
    account), poll until Running with an IP, and return the IP."""
    deadline = time.monotonic() + timeout
    while create:
        try:
            await client.create(demo_pod())
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod not created: {exc}") from exc
            await asyncio.sleep(0.1)
    while True:
        pod = await client.get("pods", POD, "default")
        assert isinstance(pod, core_pb2.Pod)
        if pod.status.phase == "Running" and pod.status.pod_ip:
            return pod.status.pod_ip
        if time.monotonic() > deadline:
            raise TimeoutError(f"pod not Running in {timeout:.0f}s: {pod.status}")
        await asyncio.sleep(0.1)


def wait_http(get: Any, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(get())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def time_to_ready(timeout: float) -> tuple[dict[str, float], Lab]:
    """One cold start; returns the phases and the running lab (the caller destroys it)."""
    TimedLab.marks = {}
    start = time.monotonic()
    lab = TimedLab.up(nodes=0, master_agent=True, name=NAME, timeout=timeout)
    marks = TimedLab.marks
    ip = asyncio.run(run_pod(lab, timeout))
    marks["pod_running"] = time.monotonic()
    body = wait_http(lambda: lab.http_get("master", ip, 80), timeout)
    marks["pod_answering"] = time.monotonic()
    if not body.strip():
        raise RuntimeError(f"the demo pod answered an empty body: {body!r}")
    phases = phase_durations(marks, start)
    phases["total"] = marks["pod_answering"] - start
    return phases, lab


CLI_PHASES = ("lab_up_command", "pinctl_apply", "pod_running", "pod_answering")
POD_MANIFEST = json.dumps(
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "labels": {"app": POD}},
     "spec": {"containers": [{"name": "web", "image": IMAGE, "command": ["serve", "80"]}]}}
)  # fmt: skip


def cli_time_to_ready(timeout: float) -> dict[str, float]:
    """The same path through the commands a user types, each paying its interpreter start:
    `pinnace lab up --nodes 0 --master-agent` (returns once the node is Ready), then `pinctl
    apply -f -` of the demo pod; the lab is destroyed on return."""
    start = time.monotonic()
    try:
        subprocess.run(
            [sys.executable, "-m", "pinnace_cmd.main", "lab", "up", "--name", NAME, "--nodes", "0",
             "--master-agent", "--timeout", str(int(timeout))],
            capture_output=True, text=True, check=True, timeout=timeout + 60,
        )  # fmt: skip
        marks = {"lab_up_command": time.monotonic()}
        lab = Lab.load(NAME)
        lab.pinctl("apply", "-f", "-", input=POD_MANIFEST)
        marks["pinctl_apply"] = time.monotonic()

        async def running() -> str:
            async with lab.api_client(timeout=5) as client:
                return await pod_ip(client, timeout, create=False)

        ip = asyncio.run(running())
        marks["pod_running"] = time.monotonic()
        wait_http(lambda: lab.http_get("master", ip, 80), timeout)
        marks["pod_answering"] = time.monotonic()
    finally:
        destroy(NAME)
    out, previous = {}, start
    for phase in CLI_PHASES:
        out[phase], previous = marks[phase] - previous, marks[phase]
    out["total"] = marks["pod_answering"] - start
    return out


def docker_floor(timeout: float) -> float:
    """`docker run` of the same image and command until it answers HTTP in its namespace."""
    start = time.monotonic()
    cid = subprocess.run(
        ["docker", "run", "-d", "--network", "none", "--label", f"{FLOOR_LABEL}=1",
         "--entrypoint", "serve", IMAGE, "80"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        pid = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Pid}}", cid], capture_output=True, text=True, check=True
        ).stdout.strip()

        def get() -> bytes:
            with open_in(f"/proc/{pid}/ns/net", "127.0.0.1", 80, 2) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                answer = sock.recv(65536)
            if b" 200 " not in answer.split(b"\r\n", 1)[0] + b" ":
                raise ConnectionError(f"answered {answer[:60]!r}")
            return answer

        wait_http(get, timeout)
        return time.monotonic() - start
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)


SOLO_NETNS = f"{NAME}-solo"
SOLO_NODE = f"{NAME}-solo"


def solo_time_to_ready(timeout: float) -> dict[str, float]:
    """Without the lab: `pinnace server` alone in a fresh namespace holding only loopback
    (node IP 127.0.0.1), to the same end point; everything it made is removed on return."""
    data = Path(f"/var/lib/pinnace/{SOLO_NETNS}")
    solo_cleanup(data, None)
    start = time.monotonic()
    subprocess.run(["ip", "netns", "add", SOLO_NETNS], check=True)
    subprocess.run(["ip", "-n", SOLO_NETNS, "link", "set", "lo", "up"], check=True)
    netns = f"/var/run/netns/{SOLO_NETNS}"
    marks = {"namespaces": time.monotonic()}
    data.mkdir(parents=True)
    log = (data.parent / f"{SOLO_NETNS}.log").open("wb")
    server = subprocess.Popen(
        ["nsenter", f"--net={netns}", "--", sys.executable, "-m", "pinnace_cmd.main", "server",
         "--data-dir", str(data), "--node-ip", "127.0.0.1", "--node-name", SOLO_NODE,
         "--write-kubeconfig", str(data / "admin.conf")],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PINNACE_LOG_FORMAT": "json"}, start_new_session=True,
    )  # fmt: skip
    relay: Relay | None = None
    succeeded = False
    try:
        deadline = time.monotonic() + timeout
        while not (data / "admin.conf").exists() or not _answers(netns, 6443):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pinnace server did not answer; see {log.name}")
            time.sleep(0.05)
        marks["apiserver"] = time.monotonic()
        relay = Relay(netns, "127.0.0.1", 6443)
        credentials = dataclasses.replace(load_client_config(data / "admin.conf"), server=relay.address)

        async def ready_and_pod() -> str:
            async with credentials.client(timeout=5) as client:
                while not await _node_ready(client):
                    if time.monotonic() > deadline:
                        raise TimeoutError("the local node is not Ready")
                    await asyncio.sleep(0.1)
                marks["node_ready"] = time.monotonic()
                return await pod_ip(client, timeout)

        ip = asyncio.run(ready_and_pod())
        marks["pod_running"] = time.monotonic()

        def get() -> bytes:
            with open_in(netns, ip, 80, 2) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return sock.recv(65536)

        wait_http(get, timeout)
        marks["pod_answering"] = time.monotonic()
        phases = phase_durations(marks, start)
        phases["total"] = marks["pod_answering"] - start
        succeeded = True
        return phases
    finally:
        if relay is not None:
            relay.close()
        solo_cleanup(data, server)
        log.close()
        if succeeded:  # on failure the log stays for the reader
            Path(log.name).unlink()


def _answers(netns: str, port: int) -> bool:
    try:
        open_in(netns, "127.0.0.1", port, 1).close()
    except OSError:
        return False
    return True


async def _node_ready(client: Client) -> bool:
    try:
        node = await client.get("nodes", SOLO_NODE)
    except Exception:
        return False
    assert isinstance(node, core_pb2.Node)
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def solo_cleanup(data: Path, server: subprocess.Popen[bytes] | None) -> None:
    """Stop the server we started (by its pid), then remove its containers, mounts, netns and
    data dir; safe when some of them do not exist."""
    if server is not None and server.poll() is None:
        server.kill()
        server.wait(30)
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.pinnace.cri.node={SOLO_NODE}"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    if listed:
        subprocess.run(["docker", "rm", "-f", *listed], capture_output=True, check=False)
    prefix = f"{data}/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    subprocess.run(["ip", "netns", "del", SOLO_NETNS], capture_output=True, check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(data)], check=False)


# ---------------------------------------------------------------------- idle footprint


def named(comm: str) -> list[int]:
    return [s.pid for s in all_stats().values() if s.comm == comm]


def idle_footprint(lab: Lab, seconds: float) -> dict[str, Any]:
    root = lab.state.processes["server"].pid
    floor = subprocess.Popen(
        [sys.executable, "-c", FLOOR_SCRIPT, str(REPO / "protos")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert floor.stdout is not None
        if floor.stdout.readline().strip() != "ready":
            raise RuntimeError("the floor interpreter did not start")
        clock = os.sysconf("SC_CLK_TCK")
        before = {s.pid: s for s in tree(root)}
        floor_before = read_stat(floor.pid)
        started = time.monotonic()
        time.sleep(seconds)
        window = time.monotonic() - started
        after = tree(root)
        floor_after = read_stat(floor.pid)
        assert floor_before is not None and floor_after is not None
        if not after or after[0].pid != root:
            raise RuntimeError("pinnace server exited during the idle window")
        # A child reaped in the window: its ticks moved into the parent's cutime/cstime.
        ticks = sum(s.ticks for s in after) - sum(before[p].ticks for p in before)
        cluster = footprint(s.pid for s in after)
        base = footprint([floor.pid])
        return {
            "idle_seconds": round(window, 1),
            "processes": [f"{s.pid} {s.comm}" for s in after],
            **cluster,
            "cpu_percent": cpu_percent(ticks, clock, window),
            "floor_rss_mb": base["rss_mb"],
            "floor_pss_mb": base["pss_mb"],
            "floor_cpu_percent": cpu_percent(floor_after.ticks - floor_before.ticks, clock, window),
            "ratio_rss": cluster["rss_mb"] / base["rss_mb"],
            "dockerd_rss_mb": footprint(named("dockerd"))["rss_mb"],
            "containerd_rss_mb": footprint(named("containerd"))["rss_mb"],
        }
    finally:
        floor.kill()
        floor.wait()


# ---------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"runs": [], "solo_runs": [], "cli_runs": [], "floor_docker_s": []}
    destroy(NAME)  # a lab left by an interrupted run of this bench
    docker_floor(args.timeout)  # warm-up: page cache, image layers
    lab: Lab | None = None
    try:
        for i in range(args.runs):
            floor = docker_floor(args.timeout)
            report["floor_docker_s"].append(floor)
            print(json.dumps({"run": i, "floor_docker_s": round(floor, 2)}), flush=True)
            if not args.no_solo:
                solo = solo_time_to_ready(args.timeout)
                report["solo_runs"].append(solo)
                print(json.dumps({"run": i, "solo": {k: round(v, 2) for k, v in solo.items()}}), flush=True)
            if not args.no_cli:
                cli = cli_time_to_ready(args.timeout)
                report["cli_runs"].append(cli)
                print(json.dumps({"run": i, "cli": {k: round(v, 2) for k, v in cli.items()}}), flush=True)
            phases, lab = time_to_ready(args.timeout)
            report["runs"].append(phases)
            print(json.dumps({"run": i, "lab": {k: round(v, 2) for k, v in phases.items()}}), flush=True)
            if i < args.runs - 1:
                lab.down()
                lab = None
        assert lab is not None
        report["idle"] = idle_footprint(lab, args.idle_seconds)
    finally:
        if lab is not None:
            lab.down()
        destroy(NAME)
    report["time_to_ready"] = {k: summary(r[k] for r in report["runs"]) for k in (*PHASES, "total")}
    if report["cli_runs"]:
        report["cli"] = {k: summary(r[k] for r in report["cli_runs"]) for k in (*CLI_PHASES, "total")}
    if report["solo_runs"]:
        report["solo"] = {k: summary(r[k] for r in report["solo_runs"]) for k in (*PHASES, "total")}
    report["floor"] = summary(report["floor_docker_s"])
    return report


def print_phases(title: str, ready: dict[str, dict[str, float]], phases: Iterable[str] = PHASES) -> None:
    print(f"\n{title} (median / max, seconds):")
    for phase in phases:
        print(f"  {phase:<15} {ready[phase]['median']:6.2f} / {ready[phase]['max']:6.2f}")
    total = ready["total"]
    print(f"  {'total':<15} {total['median']:6.2f} / {total['max']:6.2f}   goal < {GOAL_READY_S:.0f} s")


def print_report(report: dict[str, Any]) -> None:
    floor, idle = report["floor"], report["idle"]
    runs = len(report["runs"])
    print_phases(
        f"time to ready, lab (`pinnace lab up --nodes 0 --master-agent`), {runs} runs",
        report["time_to_ready"],
    )
    if "cli" in report:
        print_phases(f"time to ready, the same through `pinnace lab up` and `pinctl apply`, {runs} runs",
                     report["cli"], CLI_PHASES)  # fmt: skip
    if "solo" in report:
        print_phases(
            f"time to ready, `pinnace server` alone in a loopback-only netns, {runs} runs", report["solo"]
        )
    print(f"  floor: docker run until HTTP answers {floor['median']:6.2f} / {floor['max']:6.2f}")
    print("  quoted, NOT measured here: " + ", ".join(f"{k} {v} s" for k, v in ANCHORS_READY.items()))
    print(f"\nidle footprint after {idle['idle_seconds']} s ({len(idle['processes'])} processes):")
    print(f"  pinnace server + local node: RSS {idle['rss_mb']:.0f} MB, PSS {idle['pss_mb']:.0f} MB, "
          f"CPU {idle['cpu_percent']:.2f} % of one core   goal RSS < {GOAL_IDLE_MB:.0f} MB")  # fmt: skip
    print(f"  floor: python + grpc + protos RSS {idle['floor_rss_mb']:.0f} MB, PSS {idle['floor_pss_mb']:.0f} MB, "
          f"CPU {idle['floor_cpu_percent']:.2f} %; ratio RSS {idle['ratio_rss']:.1f}x")  # fmt: skip
    print(
        f"  context: dockerd {idle['dockerd_rss_mb']:.0f} MB, containerd {idle['containerd_rss_mb']:.0f} MB RSS"
    )
    print("  quoted, NOT measured here: " + ", ".join(f"{k} ~{v:.0f} MB" for k, v in ANCHOR_IDLE_MB.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="cold starts to time (default 3)")
    parser.add_argument("--idle-seconds", type=float, default=300.0, help="idle window (default 300)")
    parser.add_argument("--timeout", type=float, default=180.0, help="per step (default 180)")
    parser.add_argument("--no-cli", action="store_true", help="skip the variant through the commands")
    parser.add_argument("--no-solo", action="store_true", help="skip the variant without the lab")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.idle_seconds <= 0:
        parser.error("--runs must be at least 1 and --idle-seconds positive")
    if os.geteuid() != 0:
        print("bench_cluster: run as root (it builds a lab of network namespaces)", file=sys.stderr)
        return 2
    report = run(args)
    print_report(report)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
