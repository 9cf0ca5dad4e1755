"""The library closure the redis and guestbook images are packed with."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runtime_shims.docker.shared_libraries import MissingLibraryError, parse_ldd, shared_libraries

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd3a5f2000)
\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f0e1c087000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0e1bea5000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0e1c2d8000)
"""


def test_parse_ldd_keeps_every_file_and_the_loader_but_not_the_vdso() -> None:
    assert parse_ldd(LDD_OUTPUT) == [
        "/lib/x86_64-linux-gnu/libssl.so.3",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ]


def test_parse_ldd_refuses_a_missing_library() -> None:
    with pytest.raises(MissingLibraryError, match=r"libfoo\.so\.1, libbar\.so\.2"):
        parse_ldd(LDD_OUTPUT + "\tlibfoo.so.1 => not found\n\tlibbar.so.2 => not found\n")


def test_shared_libraries_of_a_real_binary() -> None:
    ls = Path(shutil.which("ls") or "/bin/ls")
    libraries = shared_libraries(ls)
    assert any(path.startswith("lib") and "/libc.so" in path for path in libraries)
    assert all(not path.startswith("/") and content[:4] == b"\x7fELF" for path, content in libraries.items())


def test_shared_libraries_refuses_a_static_binary() -> None:
    with pytest.raises(MissingLibraryError, match="not a dynamic executable"):
        shared_libraries(Path("/bin/busybox"))
