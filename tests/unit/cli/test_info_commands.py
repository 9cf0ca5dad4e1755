"""version, api-resources, cluster-info and the `pinnace kubectl` alias."""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import redirect_stdout

import yaml

from pinnace_cmd import main as pinnace
from services.apiserver.server import APIServer
from services.cli.app import main_async
from services.client.client import Client
from tests.unit.apiserver.helpers import manifest
from tests.unit.cli.conftest import Pinctl


async def test_version_asks_the_server(pinctl: Pinctl) -> None:
    result = await pinctl("version")
    assert result.out.splitlines() == ["Client Version: v0.1.0", "Server Version: v0.1.0"]
    client_only = await pinctl("version", "--client")
    assert client_only.out == "Client Version: v0.1.0\n"
    document = yaml.safe_load((await pinctl("version", "-o", "yaml")).out)
    assert document["serverVersion"]["gitVersion"] == "v0.1.0"
    assert "/" in document["serverVersion"]["platform"]


async def test_unreachable_server(pinctl: Pinctl) -> None:
    result = await pinctl("--server", "127.0.0.1:1", "--request-timeout", "5", "version")
    assert result.code == 1
    assert result.err == (
        "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n"
    )


async def test_api_resources(pinctl: Pinctl) -> None:
    lines = (await pinctl("api-resources")).out.splitlines()
    assert lines[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert lines[1].split()[0] == "configmaps"  # the core group first, sorted by name
    deployments = next(line.split() for line in lines if line.startswith("deployments "))
    assert deployments == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert "bindings" not in (await pinctl("api-resources", "-o", "name")).out.split()
    cluster = (await pinctl("api-resources", "--namespaced=false", "-o", "name")).out.split()
    assert "nodes" in cluster and "pods" not in cluster
    apps = (await pinctl("api-resources", "--api-group", "apps", "-o", "name")).out.split()
    assert set(apps) >= {"daemonsets.apps", "deployments.apps", "replicasets.apps", "statefulsets.apps"}
    assert all(name.endswith(".apps") for name in apps)
    wide = (await pinctl("api-resources", "-o", "wide")).out.splitlines()
    assert "[create delete get list patch update watch]" in next(
        line for line in wide if line.startswith("pods ")
    )


async def test_cluster_info(pinctl: Pinctl, client: Client, server: APIServer) -> None:
    await client.create(
        manifest("""
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {kubernetes.io/cluster-service: "true", kubernetes.io/name: CoreDNS}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: dns, port: 53, protocol: UDP}]
""")
    )
    lines = (await pinctl("cluster-info")).out.splitlines()
    assert lines[0] == f"Kubernetes control plane is running at 127.0.0.1:{server.port}"
    assert lines[1] == "The kubernetes service (the API inside the cluster) is at 10.96.0.1:443"
    assert lines[2] == "CoreDNS is running at 10.96.0.10:53"
    dump = (await pinctl("cluster-info", "dump")).out
    decoder = json.JSONDecoder()
    documents, index = [], 0
    while index < len(dump):
        document, end = decoder.raw_decode(dump, index)
        documents.append(document)
        index = end + 1
    assert all(d["kind"] == "List" for d in documents)
    assert len(documents) == 1 + 2 * 7  # nodes, then seven kinds in kube-system and default


async def test_pinnace_kubectl_alias(server: APIServer) -> None:
    out = io.StringIO()
    argv = [
        "kubectl",
        "--server",
        f"127.0.0.1:{server.port}",
        "--insecure-plaintext",
        "get",
        "ns",
        "-o",
        "name",
    ]
    with redirect_stdout(out):
        code = await asyncio.to_thread(pinnace.main, argv)  # it runs its own event loop
    assert code == 0
    assert "namespace/default" in out.getvalue().split()


async def test_global_flags_after_the_command(server: APIServer) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "get",
        "ns",
        "default",
        "-o",
        "name",
        "--server",
        f"127.0.0.1:{server.port}",
        "--insecure-plaintext",
    ]
    assert await main_async(argv, out=out, err=err) == 0, err.getvalue()
    assert out.getvalue() == "namespace/default\n"
