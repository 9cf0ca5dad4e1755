"""host-local's on-disk allocation store, byte-compatible with the reference plugin's.

Layout under <dataDir>/<network>: one file per allocated IP (name = the IP, content
`<containerID>\\r\\n<ifname>`), `last_reserved_ip.<rangeSetIndex>` for round-robin, and a
`lock` file that every process flock(2)s around its operations. Because the reference
plugin uses the same files and the same lock, either plugin can allocate and release on
the other's store without duplicates.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cni_plugins.result import IPAddress
from cni_plugins.spec import ERR_IO_FAILURE, ERR_TRY_AGAIN_LATER, CniError

LAST_IP_PREFIX = "last_reserved_ip."
LINE_BREAK = "\r\n"
LOCK_TIMEOUT = 60.0  # seconds; past it the runtime is told to try again later


class Store:
    """The allocations of one network in one data directory."""

    def __init__(self, network: str, data_dir: str, *, create: bool = True) -> None:
        self.dir = Path(data_dir) / network
        if not create:
            return
        try:
            self.dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            raise CniError(
                ERR_IO_FAILURE, f"cannot create IPAM data directory {self.dir}: {exc.strerror}"
            ) from None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's flock; bounded wait, then error 11 (try again later)."""
        try:
            fd = os.open(self.dir / "lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise CniError(ERR_IO_FAILURE, f"cannot open IPAM lock in {self.dir}: {exc.strerror}") from None
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT
            delay = 0.0005
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise CniError(ERR_TRY_AGAIN_LATER, f"IPAM store {self.dir} is locked") from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.01)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def _path(self, ip: IPAddress) -> Path:
        return self.dir / str(ip)

    def reserve(self, container_id: str, ifname: str, ip: IPAddress, range_id: int) -> bool:
        """Claim `ip` for the attachment; False when it is already taken."""
        path = self._path(ip)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return False
        except OSError as exc:
            raise CniError(ERR_IO_FAILURE, f"cannot reserve {ip}: {exc.strerror}") from None
        try:
            os.write(fd, (container_id.strip() + LINE_BREAK + ifname).encode())
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise CniError(ERR_IO_FAILURE, f"cannot reserve {ip}: {exc.strerror}") from None
        os.close(fd)
        try:
            (self.dir / f"{LAST_IP_PREFIX}{range_id}").write_text(str(ip))
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise CniError(ERR_IO_FAILURE, f"cannot record last reserved IP: {exc.strerror}") from None
        return True

    def last_reserved(self, range_id: int) -> IPAddress | None:
        """The IP last handed out from range set `range_id`, if recorded and readable."""
        try:
            return ipaddress.ip_address((self.dir / f"{LAST_IP_PREFIX}{range_id}").read_text().strip())
        except (OSError, ValueError):
            return None

    def allocations(self) -> dict[IPAddress, tuple[str, str]]:
        """Every allocation: IP -> (container id, ifname); ifname is "" for legacy files."""
        out: dict[IPAddress, tuple[str, str]] = {}
        try:
            names = [p.name for p in self.dir.iterdir()]
        except FileNotFoundError:
            return out
        for name in names:
            try:
                ip = ipaddress.ip_address(name)
            except ValueError:
                continue
            try:
                content = (self.dir / name).read_bytes().decode(errors="replace").strip()
            except OSError:
                continue
            cid, _, ifname = content.partition(LINE_BREAK)
            out[ip] = (cid.strip(), ifname.strip())
        return out

    def find_by_id(self, container_id: str, ifname: str) -> list[IPAddress]:
        """IPs held by the attachment (legacy id-only files count when nothing else matches)."""
        allocs = self.allocations()
        cid = container_id.strip()
        found = [ip for ip, owner in allocs.items() if owner == (cid, ifname)]
        if not found:
            found = [ip for ip, owner in allocs.items() if owner == (cid, "")]
        return sorted(found, key=lambda ip: (ip.version, int(ip)))

    def release(self, ip: IPAddress) -> None:
        """Forget one allocation; an already missing one is fine."""
        try:
            self._path(ip).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise CniError(ERR_IO_FAILURE, f"cannot release {ip}: {exc.strerror}") from None

    def release_by_id(self, container_id: str, ifname: str) -> list[IPAddress]:
        """Release everything the attachment holds; returns what was released."""
        ips = self.find_by_id(container_id, ifname)
        for ip in ips:
            self.release(ip)
        return ips
