"""pinnace: the command-line entry point. Subcommands grow with the project; each one is a few
lines here calling into services/."""

from __future__ import annotations

import argparse
import sys

from pinnace_cmd import agent, apiserver, bootstrap, controller_manager, kubelet, lab, server, token
from services.cli.app import main as pinctl_main
from services.machinery import codec
from services.machinery.manifests import ManifestSourceError, load, read_sources

VERSION = "0.1.0"


def _validate(args: argparse.Namespace) -> int:
    try:
        sources = read_sources(args.filename, recursive=args.recursive)
        count = 0
        for source in sources:
            for item in load(source, default_namespace=args.namespace):
                count += 1
                if args.output:
                    text = codec.to_json(item.obj) if args.output == "json" else codec.to_yaml(item.obj)
                    sys.stdout.write(text if args.output == "json" else "---\n" + text)
                    if args.output == "json":
                        sys.stdout.write("\n")
    except ManifestSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.output:
        print(f"{count} object(s) in {len(sources)} file(s) are valid")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pinnace", description="pinnace, a Kubernetes-style orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the client version")
    validate = sub.add_parser("validate", help="decode, default and validate manifests without a cluster")
    validate.add_argument(
        "-f", "--filename", action="append", required=True, help="file, folder or '-' for stdin (repeatable)"
    )
    validate.add_argument(
        "-R", "--recursive", action="store_true", default=True, help="descend into folders (default)"
    )
    validate.add_argument(
        "-n", "--namespace", default="default", help="namespace for namespaced objects without one"
    )
    validate.add_argument(
        "-o", "--output", choices=("yaml", "json"), help="print the defaulted objects instead of a summary"
    )
    apiserver_parser = sub.add_parser("apiserver", help="run the API server (same as pinnace-apiserver)")
    apiserver.add_arguments(apiserver_parser)
    bootstrap.add_arguments(
        sub.add_parser("bootstrap", help="create the CA, certificates and client configurations")
    )
    controller_manager.add_arguments(
        sub.add_parser("controller-manager", help="run the controllers (same as pinnace-controller-manager)")
    )
    server.add_arguments(
        sub.add_parser("server", help="run a control plane and a local node in one process (like k3s server)")
    )
    agent.add_arguments(sub.add_parser("agent", help="join this machine as a node (like k3s agent)"))
    lab.add_arguments(sub.add_parser("lab", help="a whole cluster in network namespaces on this machine"))
    kubelet_parser = sub.add_parser("kubelet", help="run the node agent (same as pinnace-kubelet)")
    kubelet.add_arguments(kubelet_parser)
    token.add_arguments(sub.add_parser("token", help="manage bootstrap tokens for joining nodes"))
    sub.add_parser("kubectl", help="the pinctl client, like `k3s kubectl`: pinnace kubectl get pods")
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["kubectl"]:
        return pinctl_main(words[1:])
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(f"pinnace {VERSION}")
        return 0
    if args.command == "apiserver":
        return apiserver.run(args)
    if args.command == "server":
        return server.run(args)
    if args.command == "agent":
        return agent.run(args)
    if args.command == "lab":
        return lab.run(args)
    if args.command == "kubelet":
        return kubelet.run(args)
    if args.command == "controller-manager":
        return controller_manager.run(args)
    if args.command == "bootstrap":
        return bootstrap.run(args)
    if args.command == "token":
        return token.run(args)
    return _validate(args)


if __name__ == "__main__":
    sys.exit(main())
