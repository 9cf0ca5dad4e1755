"""pinnace-images: build the local images (pinnace/pause, pinnace/busybox) if they are missing
or stale. Idempotent; fast when they are current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import docker

from runtime_shims.docker.local_images import BUSYBOX, ensure_images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace-images", description=__doc__)
    parser.add_argument(
        "--docker-host", default=None, help="docker endpoint (default: $DOCKER_HOST or the local socket)"
    )
    parser.add_argument("--busybox", type=Path, default=BUSYBOX, help="static busybox binary to build from")
    args = parser.parse_args(argv)
    client = docker.DockerClient(base_url=args.docker_host) if args.docker_host else docker.from_env()
    try:
        built = ensure_images(client, args.busybox)
    except FileNotFoundError as exc:
        print(f"pinnace-images: {exc}", file=sys.stderr)
        return 1
    for reference, was_built in built.items():
        print(f"{reference}: {'built' if was_built else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
