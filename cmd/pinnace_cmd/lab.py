"""pinnace lab: build, inspect, use and remove a lab cluster of network namespaces (docs/lab.md)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from services.lab import DEFAULT_STATE_ROOT, Lab, LabError, destroy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default="lab", help="lab name (its namespaces are pl-NAME-*)")
    common.add_argument(
        "--state-root", type=Path, default=DEFAULT_STATE_ROOT, help="where labs keep their state"
    )
    verbs = parser.add_subparsers(dest="lab_command", required=True)
    up = verbs.add_parser("up", parents=[common], help="build a lab and wait until every node is Ready")
    up.add_argument("--nodes", type=int, default=2, help="number of node hosts (0-80)")
    up.add_argument(
        "--split-control-plane",
        action="store_true",
        help="apiserver, scheduler and controller-manager as three processes",
    )
    up.add_argument("--master-agent", action="store_true", help="the master is a node too")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for Ready nodes")
    verbs.add_parser("status", parents=[common], help="hosts, addresses and components of a lab (JSON)")
    execute = verbs.add_parser("exec", parents=[common], help="run a command inside a lab host's namespace")
    execute.add_argument("host", help="master, node1, ..., client or lan")
    execute.add_argument("argv", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    down = verbs.add_parser("down", parents=[common], help="remove a lab, also after a crash")
    down.add_argument("--all", action="store_true", help="every lab under the state root")


def _up(args: argparse.Namespace) -> int:
    lab = Lab.up(
        args.nodes,
        name=args.name,
        state_root=args.state_root,
        split_control_plane=args.split_control_plane,
        master_agent=args.master_agent,
        timeout=args.timeout,
    )
    print(f"lab {lab.name} is up; state in {lab.state_dir}")
    for host in lab.state.hosts:
        node = f"  Node {host.node_name}" if host.node_name else ""
        print(f"  {host.name:<8} {host.ip:<15} netns {host.netns}{node}")
    pinctl = Path(sys.executable).parent / "pinctl"
    print(f"use it:    pinnace lab exec --name {lab.name} client -- \\")
    print(f"             {pinctl} --kubeconfig {lab.kubeconfig} get nodes")
    print(f"remove it: pinnace lab down --name {lab.name}")
    return 0


def _exec(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise LabError("exec needs a command: pinnace lab exec HOST -- CMD [ARG...]")
    netns = Lab.load(args.name, args.state_root).host(args.host).netns
    return subprocess.run(["ip", "netns", "exec", netns, *argv], check=False).returncode


def _down(args: argparse.Namespace) -> int:
    names = [args.name]
    if args.all:
        root: Path = args.state_root
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for name in names:
        for item in destroy(name, args.state_root):
            print(f"lab {name}: removed {item}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        if args.lab_command == "up":
            return _up(args)
        if args.lab_command == "status":
            print(json.dumps(Lab.load(args.name, args.state_root).status(), indent=2))
            return 0
        if args.lab_command == "exec":
            return _exec(args)
        return _down(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
