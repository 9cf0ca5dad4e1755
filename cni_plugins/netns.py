"""Network namespace handles: open a CNI_NETNS path safely and switch the process into it.

Python 3.11 has no os.setns, so this calls libc's setns(2). Plugins run single-threaded (a
process per call, or a single-use daemon worker), so switching the whole process is safe.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cni_plugins.spec import ERR_INVALID_ENV, ERR_UNKNOWN_CONTAINER, CniError

CLONE_NEWNET = 0x40000000
_NS_GET_NSTYPE = 0xB703  # ioctl(2) on an nsfs file: which namespace type it is

_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    """Move this process into the network namespace `fd` refers to."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def unshare_net() -> None:
    """Give this process a fresh, private network namespace."""
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")


def open_netns(path: str) -> int:
    """An fd on the netns at `path`.

    A missing path is an unknown container (3): the runtime has nothing to clean up. A path
    that exists but is no network namespace is an invalid CNI_NETNS (4).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CniError(ERR_UNKNOWN_CONTAINER, f"netns {path!r} does not exist") from None
    except OSError as exc:
        raise CniError(ERR_INVALID_ENV, f"CNI_NETNS: cannot open {path!r}: {exc.strerror}") from None
    try:
        nstype = fcntl.ioctl(fd, _NS_GET_NSTYPE)
    except OSError:
        nstype = -1
    if nstype != CLONE_NEWNET:
        os.close(fd)
        raise CniError(ERR_INVALID_ENV, f"CNI_NETNS: {path!r} is not a network namespace")
    return fd


def same_netns(fd: int) -> bool:
    """Whether `fd` is the namespace this process is in (ADD into it would hit the host)."""
    here = Path("/proc/thread-self/ns/net").stat()
    there = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def current_netns_fd() -> int:
    """An fd on the namespace this process is in, to come back to."""
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


@contextmanager
def entered(fd: int) -> Iterator[None]:
    """Run the body inside netns `fd`, then return to where we were, even on error."""
    home = current_netns_fd()
    try:
        setns(fd)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(home)


def is_missing_netns_error(exc: BaseException) -> bool:
    """Whether an error means the container's netns is gone (DEL then still succeeds)."""
    if isinstance(exc, CniError):
        return exc.code == ERR_UNKNOWN_CONTAINER
    return isinstance(exc, OSError) and exc.errno == errno.ENOENT
