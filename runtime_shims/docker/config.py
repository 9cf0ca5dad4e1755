"""The shim's settings: one immutable record built from the command line."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from runtime_shims.docker.local_images import PAUSE_IMAGE

DEFAULT_SOCKET = Path("/run/pinnace/cri-docker.sock")
DEFAULT_CNI_CONF_DIR = Path("/etc/cni/net.d")
DEFAULT_CNI_BIN_DIRS = (Path("/opt/cni/bin"),)
DEFAULT_CNI_CACHE_DIR = Path("/var/lib/cni")
RUNTIME_NAME = "docker"
CRI_VERSION = "0.1.0"
RUNTIME_API_VERSION = "v1"


@dataclass(frozen=True)
class ShimConfig:
    socket_path: Path = DEFAULT_SOCKET
    docker_host: str | None = None
    cni_conf_dir: Path = DEFAULT_CNI_CONF_DIR
    cni_bin_dirs: tuple[Path, ...] = DEFAULT_CNI_BIN_DIRS
    cni_cache_dir: Path = DEFAULT_CNI_CACHE_DIR
    pause_image: str = PAUSE_IMAGE
    node_name: str = socket.gethostname()
    streaming_address: str = "127.0.0.1:0"
    metrics_address: str = ""
    workers: int = 32
    stop_sandbox_grace_seconds: int = 2
