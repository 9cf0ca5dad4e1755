"""pinctl run in-process against the in-process apiserver: `pinctl(*argv)` returns the exit
code, stdout and stderr of one command."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from services.apiserver.server import APIServer
from services.cli.app import main_async
from tests.unit.apiserver.conftest import client, server

__all__ = ["client", "pinctl", "server"]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Pinctl = Callable[..., Awaitable[Result]]


@pytest.fixture
def pinctl(server: APIServer) -> Pinctl:
    async def run(*argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = await main_async(
            ["--server", f"127.0.0.1:{server.port}", "--insecure-plaintext", *argv], out=out, err=err
        )
        return Result(code, out.getvalue(), err.getvalue())

    return run
