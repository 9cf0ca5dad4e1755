"""`pinnace token` against a TLS apiserver: create (random, given, join token), list, delete,
and refusals of bad input that change nothing."""

from __future__ import annotations

import asyncio
import re

import pytest

from pinnace_cmd import token as token_cmd
from services.client import jointoken
from services.client.client import Client
from tests.unit.security.conftest import Cluster
from tests.unit.security.test_join import admin, cluster

__all__ = ["admin", "cluster"]


async def run(cluster: Cluster, *argv: str) -> int:
    conf = str(cluster.directory / "admin.conf")
    args = [argv[0], "--kubeconfig", conf, *argv[1:]] if argv[0] != "generate" else list(argv)
    return await asyncio.to_thread(token_cmd.main, args)


async def test_create_list_delete(
    cluster: Cluster, admin: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(cluster, "create", "--description", "rack 4") == 0
    created = capsys.readouterr().out.strip()
    token = jointoken.parse(created)
    assert await run(cluster, "create", "abcdef.0123456789abcdef", "--ttl", "0", "--print-join-token") == 0
    join = capsys.readouterr().out.strip()
    pinned, given = jointoken.parse_join_token(join)
    assert str(given) == "abcdef.0123456789abcdef"
    assert pinned == jointoken.ca_hash((cluster.directory / "pki" / "ca.crt").read_bytes())
    assert await run(cluster, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA", "GROUPS"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert re.search(
        r"\b(23h|24h)\b.*authentication,signing\s+rack 4\s+system:bootstrappers:", rows[str(token)]
    )
    assert "<forever>" in rows["abcdef.0123456789abcdef"]
    assert await run(cluster, "delete", "abcdef", str(token)) == 0
    assert capsys.readouterr().out.splitlines() == [
        'bootstrap token "abcdef" deleted',
        f'bootstrap token "{token.token_id}" deleted',
    ]
    assert not (
        await admin.list("secrets", "kube-system", field_selector=f"type={jointoken.TOKEN_SECRET_TYPE}")
    ).items


async def test_bad_input_is_refused(
    cluster: Cluster, admin: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(cluster, "create", "ABCDEF.0123456789abcdef") == 1
    assert "not of the form" in capsys.readouterr().err
    assert await run(cluster, "create", "--groups", "system:masters") == 1
    assert "must match" in capsys.readouterr().err
    assert await run(cluster, "delete", "zzzzzz") == 1
    assert 'bootstrap token "zzzzzz" not found' in capsys.readouterr().err
    assert await run(cluster, "delete", "toolongid") == 1
    assert not (
        await admin.list("secrets", "kube-system", field_selector=f"type={jointoken.TOKEN_SECRET_TYPE}")
    ).items
    assert await run(cluster, "generate") == 0
    jointoken.parse(capsys.readouterr().out)
