"""critest "exec", "logs", "attach", "port-forward": ExecSync with timeout, the streaming
endpoint, CRI-format log lines, ReopenContainerLog."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import grpc
import pytest

from pinnace.cri.v1 import api_pb2 as cri
from runtime_shims.docker.netns import connect_in_netns
from runtime_shims.docker.streaming import STATUS, STDIN, encode_frame, open_stream, read_frame
from tests.integration.cri.harness import (
    Lab,
    container_config,
    exec_sync,
    running_pod,
    start_container,
    wait_for,
)

pytestmark = pytest.mark.integration

CRI_LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (stdout|stderr) (P|F) (.*)$")


def test_exec_sync(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "execs") as (sandbox_id, pod):
        app = start_container(clean_lab, sandbox_id, pod, container_config("app", "sleep", "300"))
        out = exec_sync(clean_lab, app, "sh", "-c", "echo out; echo err >&2; exit 7")
        assert (out.stdout, out.stderr, out.exit_code) == (b"out\n", b"err\n", 7)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            exec_sync(clean_lab, app, "sleep", "31", timeout=1)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 8
        assert b"sleep 31" not in exec_sync(clean_lab, app, "ps").stdout
        with pytest.raises(grpc.RpcError) as info:
            exec_sync(clean_lab, "0" * 64, "true")
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_logs_in_cri_format_and_reopen(clean_lab: Lab) -> None:
    script = "echo one; echo two >&2; head -c 20000 /dev/zero | tr '\\0' x; echo; sleep 1; i=0; while [ $i -lt 100 ]; do echo tick$i; i=$((i+1)); sleep 0.05; done; sleep 300"
    with running_pod(clean_lab, "logs") as (sandbox_id, pod):
        app = start_container(clean_lab, sandbox_id, pod, container_config("app", "sh", "-c", script))
        path = Path(pod.log_directory) / "app" / "0.log"
        assert wait_for(lambda: path.exists() and b"tick3" in path.read_bytes())
        lines = path.read_bytes().splitlines()
        parsed = [CRI_LINE.match(line) for line in lines]
        assert all(parsed), lines
        records = [(m.group(1), m.group(2), m.group(3)) for m in parsed if m]
        assert (b"stdout", b"F", b"one") in records
        assert (b"stderr", b"F", b"two") in records
        long_parts = [r for r in records if r[2].startswith(b"xxx")]
        assert [tag for _, tag, _ in long_parts] == [b"P", b"F"], "Docker splits lines at 16 KiB"
        assert b"".join(text for _, _, text in long_parts) == b"x" * 20000
        rotated = path.with_name("0.log.1")
        path.rename(rotated)
        clean_lab.runtime.ReopenContainerLog(cri.ReopenContainerLogRequest(container_id=app))
        assert wait_for(lambda: path.exists() and b"tick" in path.read_bytes())
        assert all(CRI_LINE.match(line) for line in path.read_bytes().splitlines())


async def _exec_stream(lab: Lab, url: str, stdin: bytes | None) -> tuple[bytes, dict[str, int]]:
    netns = f"/var/run/netns/{lab.netns}"
    host, port = url.split("//")[1].split("/", maxsplit=1)[0].split(":")
    sock = connect_in_netns(netns, host, int(port))
    reader, writer = await open_stream(url, sock=sock)
    if stdin is not None:
        writer.write(encode_frame(STDIN, stdin) + encode_frame(STDIN, b""))
        await writer.drain()
    output = b""
    status: dict[str, int] = {}
    while (frame := await asyncio.wait_for(read_frame(reader), 10)) is not None:
        channel, payload = frame
        if channel == STATUS:
            status = json.loads(payload)
            break
        output += payload
    writer.close()
    return output, status


def test_streaming_exec_with_stdin(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "sexec") as (sandbox_id, pod):
        app = start_container(clean_lab, sandbox_id, pod, container_config("app", "sleep", "300"))
        url = clean_lab.runtime.Exec(
            cri.ExecRequest(
                container_id=app, cmd=["sh", "-c", "tr a-z A-Z; exit 4"], stdin=True, stdout=True, stderr=True
            )
        ).url
        assert url.startswith("http://127.0.0.1:")
        output, status = asyncio.run(_exec_stream(clean_lab, url, b"shout\n"))
        assert output == b"SHOUT\n"
        assert status == {"exit_code": 4}
        with pytest.raises(ConnectionError):
            asyncio.run(_exec_stream(clean_lab, url, None))


def test_streaming_attach(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "sattach") as (sandbox_id, pod):
        config = container_config("app", "sh", "-c", "read line; echo got:$line", stdin=True, stdin_once=True)
        app = start_container(clean_lab, sandbox_id, pod, config)
        url = clean_lab.runtime.Attach(
            cri.AttachRequest(container_id=app, stdin=True, stdout=True, stderr=True)
        ).url
        output, status = asyncio.run(_exec_stream(clean_lab, url, b"hello\n"))
        assert b"got:hello" in output
        assert status == {"exit_code": 0}


def test_port_forward(clean_lab: Lab) -> None:
    with running_pod(clean_lab, "pfwd") as (sandbox_id, pod):
        start_container(
            clean_lab,
            sandbox_id,
            pod,
            container_config("web", "serve", "8080", envs=[cri.KeyValue(key="MESSAGE", value=b"forwarded")]),
        )
        url = clean_lab.runtime.PortForward(
            cri.PortForwardRequest(pod_sandbox_id=sandbox_id, port=[8080])
        ).url

        async def fetch() -> bytes:
            netns = f"/var/run/netns/{clean_lab.netns}"
            host, port = url.split("//")[1].split("/")[0].split(":")
            reader, writer = await open_stream(
                url + "?port=8080", sock=connect_in_netns(netns, host, int(port))
            )
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return data

        time.sleep(0.5)
        assert b"pfwd forwarded" in asyncio.run(fetch())
