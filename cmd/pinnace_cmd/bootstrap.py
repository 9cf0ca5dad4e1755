"""pinnace bootstrap: create the cluster CA, certificates, service-account key and client
configuration files (also `pinnace-bootstrap`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.apiserver.auth.bootstrap_files import BootstrapPlan, bootstrap


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", default="/etc/pinnace", help="where pki/ and the *.conf files go")
    parser.add_argument(
        "--server", default="127.0.0.1:6443", help="apiserver address clients use (host:port)"
    )
    parser.add_argument(
        "--apiserver-ip",
        action="append",
        default=[],
        help="extra IP SAN of the serving certificate (repeatable; 127.0.0.1 and 10.96.0.1 are always in)",
    )
    parser.add_argument("--apiserver-name", action="append", default=[], help="extra DNS SAN (repeatable)")
    parser.add_argument(
        "--node", action="append", default=[], help="issue a kubelet identity for NODE (repeatable)"
    )


def run(args: argparse.Namespace) -> int:
    plan = BootstrapPlan(
        Path(args.dir),
        args.server,
        ["127.0.0.1", "10.96.0.1", *args.apiserver_ip],
        list(args.apiserver_name),
        list(args.node),
    )
    for conf in bootstrap(plan):
        print(conf)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace-bootstrap", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
