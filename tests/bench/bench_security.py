"""The cost of security (issue 10): request latency and throughput with TLS, client
certificates and RBAC, beside a plaintext AlwaysAllow apiserver measured in the same run.

  .venv/bin/python -m tests.bench.bench_security [--requests 1000]

Both apiservers are the real program in their own processes (SQLite); the caller is a user
with a client certificate whose rights come from a RoleBinding, so every request runs the
full authentication and RBAC path.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pinnace.api.core.v1 import core_pb2
from services.apiserver.auth.bootstrap_files import BootstrapPlan, bootstrap
from services.client.client import Client
from services.client.config import Credentials, load
from services.machinery import pki
from services.machinery.codec import from_yaml
from tests.integration.apiserver.process import free_port


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def wait_ready(client: Client) -> None:
    for _ in range(200):
        try:
            await client.list("namespaces")
            return
        except Exception:
            await asyncio.sleep(0.1)
    raise TimeoutError("apiserver did not come up")


async def measure(client: Client, requests: int, label: str) -> dict[str, float]:
    gets, creates = [], []
    for i in range(requests):
        cm = core_pb2.ConfigMap()
        cm.metadata.name, cm.metadata.namespace = f"{label}-{i}", "bench"
        cm.data["k"] = "v" * 64
        start = time.perf_counter()
        await client.create(cm)
        creates.append(time.perf_counter() - start)
    for i in range(requests):
        start = time.perf_counter()
        await client.get("configmaps", f"{label}-{i % requests}", "bench")
        gets.append(time.perf_counter() - start)
    return {
        "get_p50": pct(gets, 50),
        "get_p99": pct(gets, 99),
        "create_p50": pct(creates, 50),
        "create_p99": pct(creates, 99),
        "create_rps": len(creates) / sum(creates),
    }


async def main_async(requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        secure_port, plain_port = free_port(), free_port()
        bootstrap(BootstrapPlan(root, f"127.0.0.1:{secure_port}"))
        pki_dir = root / "pki"
        base = [sys.executable, "-m", "pinnace_cmd.apiserver", "--sqlite-synchronous", "FULL"]
        secure = subprocess.Popen(
            [
                *base,
                "--listen",
                f"127.0.0.1:{secure_port}",
                "--sqlite-path",
                str(root / "secure.db"),
                "--tls-cert-file",
                str(pki_dir / "apiserver.crt"),
                "--tls-private-key-file",
                str(pki_dir / "apiserver.key"),
                "--client-ca-file",
                str(pki_dir / "ca.crt"),
                "--authorization-mode",
                "Node,RBAC",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        plain = subprocess.Popen(
            [
                *base,
                "--listen",
                f"127.0.0.1:{plain_port}",
                "--sqlite-path",
                str(root / "plain.db"),
                "--insecure",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            admin = load(root / "admin.conf").client()
            plain_client = Client.connect(f"127.0.0.1:{plain_port}")
            await wait_ready(admin)
            await wait_ready(plain_client)
            for client in (admin, plain_client):
                await client.create(from_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n"))
            await admin.create(
                from_yaml("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bencher-edit, namespace: bench}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: User, name: bencher, apiGroup: rbac.authorization.k8s.io}]
""")
            )
            pair = pki.issue(pki.KeyPair.read(pki_dir, "ca"), "bencher")
            creds = load(root / "admin.conf")
            user = Credentials(creds.server, creds.ca_pem, pair.cert_pem, pair.key_pem).client()
            results = {}
            for label, client in (
                ("plain", plain_client),
                ("secure", user),
                ("plain2", plain_client),
                ("secure2", user),
            ):
                results[label] = await measure(client, requests, label)
            print(
                f"{'variant':<34}{'GET p50':>10}{'GET p99':>10}{'create p50':>12}{'create p99':>12}{'creates/s':>11}"
            )
            for label, name in (
                ("plain2", "plaintext, AlwaysAllow"),
                ("secure2", "TLS + client cert + RBAC"),
            ):
                r = results[label]
                print(
                    f"{name:<34}{r['get_p50'] * 1e3:>9.2f}m{r['get_p99'] * 1e3:>9.2f}m"
                    f"{r['create_p50'] * 1e3:>11.2f}m{r['create_p99'] * 1e3:>11.2f}m{r['create_rps']:>11.0f}"
                )
            ratio = results["secure2"]["get_p50"] / results["plain2"]["get_p50"]
            print(f"GET p50 ratio secure/plain: {ratio:.2f}  (second round of each, after warm-up)")
            for client in (admin, plain_client, user):
                await client.close()
        finally:
            for process in (secure, plain):
                process.terminate()
                process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000)
    asyncio.run(main_async(parser.parse_args().requests))


if __name__ == "__main__":
    main()
