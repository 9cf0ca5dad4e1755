"""The local images every pinnace node needs, built from Debian's busybox-static with
`docker import` because no registry is reachable from the machines pinnace runs on.

- pinnace/pause: PID 1 of every pod sandbox (rootfs/pause.sh).
- pinnace/busybox: busybox with all applets, plus `serve`, an HTTP server that answers with
  the container's hostname and $MESSAGE (rootfs/serve.sh and rootfs/index.cgi).
- pinnace/redis: Debian's redis-server and redis-cli with their shared libraries, for the
  guestbook's master and slaves (rootfs/redis.conf).
- pinnace/guestbook: the guestbook frontend of the notes: busybox httpd serving the page and a
  CGI backend that talks to Redis with redis-cli (rootfs/guestbook.*).

Each image carries a label with the hash of everything it was built from, so `ensure_images`
is a no-op (one API call per image) when the images are current.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime_shims.docker.shared_libraries import shared_libraries

BUSYBOX = Path("/bin/busybox")
# Debian's redis-tools ships the server binary as redis-check-rdb (the redis-server package only
# adds a symlink and a system service); the binary runs as the server under any other name.
REDIS_SERVER = Path("/usr/bin/redis-check-rdb")
REDIS_CLI = Path("/usr/bin/redis-cli")
IMAGE_VERSION = "1.0"
PAUSE_IMAGE = f"pinnace/pause:{IMAGE_VERSION}"
BUSYBOX_IMAGE = f"pinnace/busybox:{IMAGE_VERSION}"
REDIS_IMAGE = f"pinnace/redis:{IMAGE_VERSION}"
GUESTBOOK_IMAGE = f"pinnace/guestbook:{IMAGE_VERSION}"
BUILD_HASH_LABEL = "io.pinnace.build-hash"
_ROOTFS = Path(__file__).resolve().parent / "rootfs"
_BUILDER_REVISION = "1"


@dataclass(frozen=True)
class ImageSpec:
    repository: str
    tags: tuple[str, ...]
    files: dict[str, tuple[bytes, int]]
    symlinks: dict[str, str]
    directories: dict[str, int]
    changes: tuple[str, ...]

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tags[0]}"

    def build_hash(self) -> str:
        digest = hashlib.sha256(_BUILDER_REVISION.encode())
        for path in sorted(self.files):
            content, mode = self.files[path]
            digest.update(f"{path}:{mode:o}:".encode())
            digest.update(hashlib.sha256(content).digest())
        for link in sorted(self.symlinks):
            digest.update(f"{link}->{self.symlinks[link]}".encode())
        for directory in sorted(self.directories):
            digest.update(f"{directory}/:{self.directories[directory]:o}".encode())
        digest.update("\n".join(self.changes).encode())
        return digest.hexdigest()

    def tarball(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for directory, mode in sorted(self.directories.items()):
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, mode
                tar.addfile(info)
            for path, (content, mode) in sorted(self.files.items()):
                info = tarfile.TarInfo(path)
                info.size, info.mode = len(content), mode
                tar.addfile(info, io.BytesIO(content))
            for link, target in sorted(self.symlinks.items()):
                info = tarfile.TarInfo(link)
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
        return buffer.getvalue()


def _applets(busybox: Path) -> list[str]:
    listing = subprocess.run([str(busybox), "--list"], check=True, capture_output=True, text=True).stdout
    return [name for name in listing.split() if name and name != "busybox"]


def _base(busybox: Path, applets: list[str]) -> tuple[dict[str, tuple[bytes, int]], dict[str, str]]:
    files = {"bin/busybox": (busybox.read_bytes(), 0o755)}
    links = {f"bin/{name}": "busybox" for name in applets}
    return files, links


def _with_libraries(
    files: dict[str, tuple[bytes, int]], binaries: dict[str, Path]
) -> dict[str, tuple[bytes, int]]:
    """files plus each binary (image path -> host path) and every shared library it loads."""
    result = dict(files)
    for image_path, host_path in binaries.items():
        if not host_path.exists():
            raise FileNotFoundError(f"{host_path} is missing: install Debian's redis-tools")
        result[image_path] = (host_path.read_bytes(), 0o755)
        for library, content in shared_libraries(host_path).items():
            result[library] = (content, 0o755)
    return result


def _directories(files: dict[str, tuple[bytes, int]], extra: dict[str, int]) -> dict[str, int]:
    """Every parent folder of files (0755) plus the extra folders with their own modes."""
    folders = {str(parent): 0o755 for path in files for parent in Path(path).parents if str(parent) != "."}
    return {**folders, "dev": 0o755, "proc": 0o755, "sys": 0o755, "tmp": 0o1777, **extra}


def app_specs(
    busybox: Path, redis_server: Path = REDIS_SERVER, redis_cli: Path = REDIS_CLI
) -> list[ImageSpec]:
    """The guestbook's images: real Redis, and the frontend that stores messages in it."""
    base, links = _base(busybox, _applets(busybox))
    redis_binaries = {"usr/bin/redis-server": redis_server, "usr/bin/redis-cli": redis_cli}
    redis_files = _with_libraries(base, redis_binaries)
    redis_files["etc/redis/redis.conf"] = ((_ROOTFS / "redis.conf").read_bytes(), 0o644)
    redis = ImageSpec(
        "pinnace/redis",
        (IMAGE_VERSION, "latest"),
        redis_files,
        links,
        _directories(redis_files, {"data": 0o777}),
        (
            'CMD ["redis-server", "/etc/redis/redis.conf"]',
            "ENV PATH=/usr/bin:/bin",
            "WORKDIR /data",
            "EXPOSE 6379",
        ),
    )
    frontend_files = _with_libraries(base, {"usr/bin/redis-cli": redis_cli})
    frontend_files["www/index.html"] = ((_ROOTFS / "guestbook.html").read_bytes(), 0o644)
    frontend_files["www/guestbook.cgi"] = ((_ROOTFS / "guestbook.cgi").read_bytes(), 0o755)
    frontend_files["etc/httpd.conf"] = ((_ROOTFS / "guestbook-httpd.conf").read_bytes(), 0o644)
    frontend_files["bin/guestbook"] = ((_ROOTFS / "guestbook.sh").read_bytes(), 0o755)
    frontend = ImageSpec(
        "pinnace/guestbook",
        (IMAGE_VERSION, "latest"),
        frontend_files,
        links,
        _directories(frontend_files, {}),
        ('CMD ["guestbook"]', "ENV PATH=/usr/bin:/bin:/sbin", "EXPOSE 80"),
    )
    return [redis, frontend]


def image_specs(busybox: Path = BUSYBOX) -> list[ImageSpec]:
    if not busybox.exists():
        raise FileNotFoundError(f"{busybox} is missing: install Debian's busybox-static")
    script = (_ROOTFS / "pause.sh").read_bytes()
    pause_files, pause_links = _base(busybox, ["sh", "sleep"])
    pause_files["pause"] = (script, 0o755)
    pause = ImageSpec(
        "pinnace/pause",
        (IMAGE_VERSION, "latest"),
        pause_files,
        pause_links,
        {"bin": 0o755, "dev": 0o755, "proc": 0o755, "sys": 0o755, "etc": 0o755},
        ('ENTRYPOINT ["/pause"]', "ENV PATH=/bin"),
    )
    files, links = _base(busybox, _applets(busybox))
    files["www/cgi-bin/index.cgi"] = ((_ROOTFS / "index.cgi").read_bytes(), 0o755)
    files["bin/serve"] = ((_ROOTFS / "serve.sh").read_bytes(), 0o755)
    files["etc/passwd"] = (
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        0o644,
    )
    files["etc/group"] = (b"root:x:0:\nnobody:x:65534:\n", 0o644)
    bb = ImageSpec(
        "pinnace/busybox",
        (IMAGE_VERSION, "latest"),
        files,
        links,
        {
            "bin": 0o755,
            "dev": 0o755,
            "proc": 0o755,
            "sys": 0o755,
            "etc": 0o755,
            "root": 0o700,
            "tmp": 0o1777,
            "www": 0o755,
            "www/cgi-bin": 0o755,
            "var": 0o755,
        },
        ('CMD ["sh"]', "ENV PATH=/bin:/sbin"),
    )
    return [pause, bb, *app_specs(busybox)]


def ensure_image(client: Any, spec: ImageSpec) -> bool:
    """Build the image unless an image with the same build hash exists; True if it built."""
    build_hash = spec.build_hash()
    current = client.images.list(filters={"label": f"{BUILD_HASH_LABEL}={build_hash}"})
    wanted = {f"{spec.repository}:{tag}" for tag in spec.tags}
    if current and wanted <= set(current[0].tags):
        return False
    if current:
        image = current[0]
    else:
        changes = [*spec.changes, f"LABEL {BUILD_HASH_LABEL}={build_hash}"]
        client.api.import_image_from_data(
            spec.tarball(), repository=spec.repository, tag=spec.tags[0], changes=changes
        )
        image = client.images.get(spec.reference)
    for tag in spec.tags:
        image.tag(spec.repository, tag)
    return True


def ensure_images(client: Any, busybox: Path = BUSYBOX) -> dict[str, bool]:
    """Make sure every local image exists and is current; maps image reference to "was built"."""
    return {spec.reference: ensure_image(client, spec) for spec in image_specs(busybox)}
