"""Benchmark: CNI bridge ADD latency, ours against Debian's reference plugin, in the same run.

For each scenario it runs N ADD/DEL cycles per variant, interleaved so machine noise hits
all variants alike, and prints p50/p99 of ADD (and DEL) with the ratio to the reference:

  reference   /usr/lib/cni/bridge + host-local (Go)
  ours-proc   pinnace-bridge + pinnace-host-local, a Python process per call (no daemon)
  ours-daemon the same executables, served by pinnace-cni-daemon (thin client + prefork worker)

Everything happens in network namespaces this program creates (a "host" netns the plugins
run in, a container netns) and removes at the end; nothing touches the root namespace.

Run as root from the repository root:  .venv/bin/python tests/bench/bench_cni.py [--cycles 100]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cni_plugins.install import install  # noqa: E402

REFERENCE_DIR = "/usr/lib/cni"
CLONE_NEWNET = 0x40000000


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
    finally:
        os.close(fd)


@contextlib.contextmanager
def lab() -> Iterator[tuple[str, str]]:
    """A host netns and a container netns, always deleted."""
    tag = uuid.uuid4().hex[:8]
    host, cont = f"pcni-bench-h-{tag}", f"pcni-bench-c-{tag}"
    try:
        subprocess.run(["ip", "netns", "add", host], check=True)
        subprocess.run(["ip", "netns", "add", cont], check=True)
        subprocess.run(["ip", "-n", host, "link", "set", "lo", "up"], check=True)
        yield host, cont
    finally:
        for ns in (cont, host):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@contextlib.contextmanager
def daemon(socket_path: str, host_ns: str) -> Iterator[subprocess.Popen[bytes]]:
    """pinnace-cni-daemon, started here and stopped at the end."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from cni_plugins.daemon import main; sys.exit(main(sys.argv[1:]))",
            "--socket",
            socket_path,
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while not Path(socket_path).exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("CNI daemon did not start")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(exe: str, env: dict[str, str], conf: dict[str, Any]) -> tuple[float, bytes]:
    start = time.perf_counter()
    proc = subprocess.run([exe], input=json.dumps(conf).encode(), env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{exe} {env['CNI_COMMAND']} failed: {proc.stdout!r} {proc.stderr!r}")
    return elapsed, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=100, help="ADD/DEL cycles per variant and scenario")
    parser.add_argument("--proc-cycles", type=int, default=0, help="cycles for ours-proc (default: --cycles)")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted cycles per variant first")
    parser.add_argument("--scenarios", default="plain,ipmasq", help="comma list of: plain, ipmasq")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_cni needs root (network namespaces)", file=sys.stderr)
        return 2
    proc_cycles = args.proc_cycles or args.cycles
    tmp = Path(tempfile.mkdtemp(prefix="pcni-bench-"))
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cycles": args.cycles, "scenarios": {}}
    try:
        bin_dir = tmp / "bin"
        install(bin_dir)
        sock = str(tmp / "cni.sock")
        with lab() as (host, cont), daemon(sock, host):
            setns(f"/run/netns/{host}")
            netns_path = f"/run/netns/{cont}"
            for scenario in args.scenarios.split(","):
                masq = scenario == "ipmasq"
                variants = {
                    "reference": (
                        f"{REFERENCE_DIR}/bridge",
                        "host-local",
                        "pcnibr-ref",
                        "10.91",
                        REFERENCE_DIR,
                        None,
                    ),
                    "ours-proc": (
                        str(bin_dir / "pinnace-bridge"),
                        "pinnace-host-local",
                        "pcnibr-proc",
                        "10.92",
                        str(bin_dir),
                        "",
                    ),
                    "ours-daemon": (
                        str(bin_dir / "pinnace-bridge"),
                        "pinnace-host-local",
                        "pcnibr-dmn",
                        "10.93",
                        str(bin_dir),
                        sock,
                    ),
                }
                samples: dict[str, dict[str, list[float]]] = {v: {"ADD": [], "DEL": []} for v in variants}
                total = args.warmup + args.cycles
                for i in range(total):
                    for name, (exe, ipam, bridge, prefix, path, socket) in variants.items():
                        if name == "ours-proc" and i >= args.warmup + proc_cycles:
                            continue
                        conf = {
                            "cniVersion": "1.0.0",
                            "name": f"bench-{name}",
                            "type": Path(exe).name,
                            "bridge": bridge,
                            "isGateway": True,
                            "ipMasq": masq,
                            "ipam": {
                                "type": ipam,
                                "subnet": f"{prefix}.0.0/16",
                                "dataDir": str(tmp / "ipam"),
                            },
                        }
                        env = {
                            "CNI_CONTAINERID": f"bench{i}",
                            "CNI_NETNS": netns_path,
                            "CNI_IFNAME": "eth0",
                            "CNI_PATH": f"{path}:{REFERENCE_DIR}",
                            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                        }
                        if socket is not None:
                            env["PINNACE_CNI_SOCKET"] = socket
                        t_add, _ = run(exe, {**env, "CNI_COMMAND": "ADD"}, conf)
                        t_del, _ = run(exe, {**env, "CNI_COMMAND": "DEL"}, conf)
                        if i >= args.warmup:
                            samples[name]["ADD"].append(t_add)
                            samples[name]["DEL"].append(t_del)
                ref = samples["reference"]["ADD"]
                rows = {}
                print(f"\n== scenario {scenario} ({args.cycles} ADD/DEL cycles, ms) ==")
                print(
                    f"{'variant':<12} {'n':>4} {'ADD p50':>8} {'ADD p99':>8} {'DEL p50':>8} {'DEL p99':>8}"
                    f" {'ratio p50':>9} {'ratio p99':>9}"
                )
                for name, s in samples.items():
                    add, dele = s["ADD"], s["DEL"]
                    row = {
                        "n": len(add),
                        "add_p50_ms": percentile(add, 50) * 1000,
                        "add_p99_ms": percentile(add, 99) * 1000,
                        "del_p50_ms": percentile(dele, 50) * 1000,
                        "del_p99_ms": percentile(dele, 99) * 1000,
                        "ratio_p50": percentile(add, 50) / percentile(ref, 50),
                        "ratio_p99": percentile(add, 99) / percentile(ref, 99),
                    }
                    rows[name] = row
                    print(
                        f"{name:<12} {row['n']:>4} {row['add_p50_ms']:>8.2f} {row['add_p99_ms']:>8.2f}"
                        f" {row['del_p50_ms']:>8.2f} {row['del_p99_ms']:>8.2f}"
                        f" {row['ratio_p50']:>9.2f} {row['ratio_p99']:>9.2f}"
                    )
                report["scenarios"][scenario] = rows
        print("\n" + json.dumps(report))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
