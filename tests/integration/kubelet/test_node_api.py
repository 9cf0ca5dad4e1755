"""The Node API over gRPC (logs, exec, port-forward, stats) and static pods with their mirror."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pinnace.kubelet.v1 import kubelet_pb2 as pb
from pinnace.kubelet.v1 import kubelet_pb2_grpc as pb_grpc
from tests.integration.kubelet.harness import Node, running

pytestmark = pytest.mark.integration

STATIC = """
apiVersion: v1
kind: Pod
metadata:
  name: static-web
  namespace: default
spec:
  containers:
  - name: web
    image: pinnace/busybox:1.0
    command: ["sh", "-c", "echo line1; echo line2; exec serve 8080"]
"""


async def test_node_api_and_static_pod(node: Node) -> None:
    client = node.client
    (node.manifests / "web.yaml").write_text(STATIC)
    mirror_name = f"static-web-{node.name}"
    pod = await node.wait_pod(mirror_name, running, timeout=90)
    assert "kubernetes.io/config.mirror" in pod.metadata.annotations
    ref = pb.PodRef(namespace="default", name=mirror_name)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{node.node_api_port}") as channel:
        api = pb_grpc.NodeAPIStub(channel)
        chunks = [
            c.data
            async for c in api.ContainerLogs(pb.ContainerLogsRequest(pod=ref, tail_lines=1), timeout=20)
        ]
        assert b"".join(chunks) == b"line2\n"

        async def requests(*messages: pb.ExecInput):
            for m in messages:
                yield m

        start = pb.ExecStart(pod=ref, container="web", command=["sh", "-c", "echo out; echo err >&2; exit 4"])
        outputs = [o async for o in api.Exec(requests(pb.ExecInput(start=start)), timeout=30)]
        assert b"".join(o.stdout for o in outputs) == b"out\n"
        assert b"".join(o.stderr for o in outputs) == b"err\n"
        assert outputs[-1].WhichOneof("output") == "exit_code" and outputs[-1].exit_code == 4
        start = pb.ExecStart(pod=ref, container="web", command=["cat"], stdin=True)
        outputs = [
            o
            async for o in api.Exec(
                requests(
                    pb.ExecInput(start=start), pb.ExecInput(stdin=b"ping"), pb.ExecInput(stdin_eof=True)
                ),
                timeout=30,
            )
        ]
        assert b"".join(o.stdout for o in outputs) == b"ping" and outputs[-1].exit_code == 0

        async def forward():
            yield pb.PortForwardInput(start=pb.PortForwardStart(pod=ref, port=8080))
            yield pb.PortForwardInput(data=b"GET / HTTP/1.0\r\n\r\n")
            await asyncio.sleep(2)

        data = b"".join([o.data async for o in api.PortForward(forward(), timeout=30)])
        assert data.startswith(b"HTTP/1.") and data.rstrip().endswith(mirror_name.encode())
        summary = await api.StatsSummary(pb.StatsSummaryRequest(), timeout=30)
        assert summary.node.node_name == node.name and summary.node.memory.available_bytes > 0
        mine = [p for p in summary.pods if p.pod_ref.name == mirror_name]
        assert mine and mine[0].containers and mine[0].memory.working_set_bytes > 0

    # deleting the mirror pod does not stop the static pod: the mirror comes back
    before = pod.status.container_statuses[0].container_id
    await client.delete("pods", mirror_name, "default")
    await asyncio.sleep(1)
    pod = await node.wait_pod(
        mirror_name, lambda p: running(p) and not p.metadata.HasField("deletion_timestamp")
    )
    assert pod.status.container_statuses[0].container_id == before
    # removing the manifest stops it
    (node.manifests / "web.yaml").unlink()
    for _ in range(120):
        if not node.containers():
            break
        await asyncio.sleep(0.5)
    assert not node.containers()
