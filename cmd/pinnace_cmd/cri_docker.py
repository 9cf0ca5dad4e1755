"""pinnace-cri-docker: the CRI runtime (runtime.v1) for Docker, on a unix socket."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from pathlib import Path

from runtime_shims.docker.config import (
    DEFAULT_CNI_BIN_DIRS,
    DEFAULT_CNI_CACHE_DIR,
    DEFAULT_CNI_CONF_DIR,
    DEFAULT_SOCKET,
    ShimConfig,
)
from runtime_shims.docker.local_images import PAUSE_IMAGE
from runtime_shims.docker.server import serve
from services.machinery.logs import configure_logging


def parse_args(argv: list[str] | None = None) -> ShimConfig:
    parser = argparse.ArgumentParser(prog="pinnace-cri-docker", description=__doc__)
    parser.add_argument("--socket", type=Path, default=DEFAULT_SOCKET, help="unix socket to serve CRI on")
    parser.add_argument(
        "--docker-host", default=None, help="docker endpoint (default: $DOCKER_HOST or the local socket)"
    )
    parser.add_argument("--cni-conf-dir", type=Path, default=DEFAULT_CNI_CONF_DIR)
    parser.add_argument(
        "--cni-bin-dir",
        default=":".join(str(d) for d in DEFAULT_CNI_BIN_DIRS),
        help="plugin directories, ':'-separated",
    )
    parser.add_argument(
        "--cni-cache-dir", type=Path, default=DEFAULT_CNI_CACHE_DIR, help="CNI result cache (libcni layout)"
    )
    parser.add_argument("--pause-image", default=PAUSE_IMAGE)
    parser.add_argument(
        "--node-name", default=socket.gethostname(), help="owner label of this shim's containers"
    )
    parser.add_argument(
        "--streaming-address",
        default="127.0.0.1:0",
        help="host:port of the exec/attach/port-forward endpoint",
    )
    parser.add_argument(
        "--metrics-address", default="", help="host:port for Prometheus /metrics (off when empty)"
    )
    parser.add_argument("--workers", type=int, default=32, help="threads for blocking docker calls")
    args = parser.parse_args(argv)
    return ShimConfig(
        socket_path=args.socket,
        docker_host=args.docker_host,
        cni_conf_dir=args.cni_conf_dir,
        cni_bin_dirs=tuple(Path(p) for p in args.cni_bin_dir.split(":") if p),
        cni_cache_dir=args.cni_cache_dir,
        pause_image=args.pause_image,
        node_name=args.node_name,
        streaming_address=args.streaming_address,
        metrics_address=args.metrics_address,
        workers=args.workers,
    )


async def _run(config: ShimConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, stop)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    configure_logging("cri-docker")
    asyncio.run(_run(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
