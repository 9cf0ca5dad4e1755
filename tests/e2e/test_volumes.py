"""Volumes in pods on the lab's nodes, read back with `pinctl exec` and `pinctl logs`: Secret and
ConfigMap volumes, an emptyDir two containers share, a hostPath, and a StatefulSet whose pods
keep their names and their volumes across a deletion.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import EXAMPLES, eventually, is_ready, namespace, pods, ready_pods

pytestmark = pytest.mark.e2e

HOSTPATH_DEMO = Path("/tmp/pinnace-hostpath-demo")
STORAGE_CLASS = "e2e-host-path"


def pod_exec(
    lab: Any, ns: str, pod: str, *argv: str, container: str = "", check: bool = True
) -> subprocess.CompletedProcess[str]:
    where = ["-c", container] if container else []
    result: subprocess.CompletedProcess[str] = lab.pinctl(
        "exec", "-n", ns, pod, *where, "--", *argv, check=check
    )
    return result


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


async def test_secret_volume_and_variable(lab: Any) -> None:
    async with lab.api_client() as client, namespace(client, "secret") as ns:
        lab.pinctl("apply", "-n", ns, "-f", str(EXAMPLES / "secrets" / "secret.yaml"))
        lab.pinctl("apply", "-n", ns, "-f", str(EXAMPLES / "secrets" / "secret-pod.yaml"))
        await ready_pods(client, ns, "", 1)
        assert pod_exec(lab, ns, "secret-demo", "cat", "/etc/foo/username").stdout == "admin"
        assert pod_exec(lab, ns, "secret-demo", "cat", "/etc/foo/password").stdout == "1f2d1e2e67df"
        assert pod_exec(lab, ns, "secret-demo", "sh", "-c", "echo $SECRET_USERNAME").stdout.strip() == "admin"
        assert lab.pinctl("logs", "-n", ns, "secret-demo").stdout.strip() == "admin"
        refused = pod_exec(lab, ns, "secret-demo", "sh", "-c", "echo x > /etc/foo/username", check=False)
        assert refused.returncode != 0


async def test_configmap_volume(lab: Any, tmp_path: Path) -> None:
    manifest = write(
        tmp_path,
        "configmap.yaml",
        """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: game-config
data:
  game.properties: |
    enemies=aliens
    lives=3
  ui.properties: color.good=purple
---
apiVersion: v1
kind: Pod
metadata:
  name: configmap-demo
spec:
  containers:
  - name: app
    image: pinnace/busybox:1.0
    command: ["sleep", "3600"]
    volumeMounts:
    - name: config
      mountPath: /etc/config
  volumes:
  - name: config
    configMap:
      name: game-config
      items:
      - key: game.properties
        path: game/game.properties
""",
    )
    async with lab.api_client() as client, namespace(client, "configmap") as ns:
        lab.pinctl("apply", "-n", ns, "-f", manifest)
        await ready_pods(client, ns, "", 1)
        content = pod_exec(lab, ns, "configmap-demo", "cat", "/etc/config/game/game.properties").stdout
        assert content == "enemies=aliens\nlives=3\n"
        # items projects only the listed key.
        listing = pod_exec(lab, ns, "configmap-demo", "ls", "/etc/config").stdout.split()
        assert listing == ["game"]


async def test_emptydir_is_shared_by_two_containers(lab: Any) -> None:
    async with lab.api_client() as client, namespace(client, "emptydir") as ns:
        lab.pinctl("apply", "-n", ns, "-f", str(EXAMPLES / "volumes" / "emptydir-pod.yaml"))
        await ready_pods(client, ns, "", 1)
        token = secrets.token_hex(8)
        pod_exec(lab, ns, "emptydir-demo", "sh", "-c", f"echo {token} > /cache/token", container="writer")
        seen = pod_exec(lab, ns, "emptydir-demo", "cat", "/cache/token", container="reader").stdout
        assert seen.strip() == token

        async def reader_follows_the_writer() -> bool:
            logs = lab.pinctl("logs", "-n", ns, "emptydir-demo", "-c", "reader").stdout
            return len(logs.splitlines()) >= 2  # the writer appends a date every 5 s

        await eventually(reader_follows_the_writer, "the reader to tail the writer's lines", 30)


async def test_hostpath_shows_the_node_directory_read_only(lab: Any) -> None:
    token = secrets.token_hex(8)
    HOSTPATH_DEMO.mkdir(exist_ok=True)
    marker = HOSTPATH_DEMO / f"e2e-{token}"
    marker.write_text(token)
    try:
        async with lab.api_client() as client, namespace(client, "hostpath") as ns:
            lab.pinctl("apply", "-n", ns, "-f", str(EXAMPLES / "volumes" / "hostpath-pod.yaml"))
            await ready_pods(client, ns, "", 1)
            assert pod_exec(lab, ns, "hostpath-demo", "cat", f"/host-data/{marker.name}").stdout == token
            assert marker.name in lab.pinctl("logs", "-n", ns, "hostpath-demo").stdout
            refused = pod_exec(lab, ns, "hostpath-demo", "touch", "/host-data/new", check=False)
            assert refused.returncode != 0 and not (HOSTPATH_DEMO / "new").exists()
    finally:
        marker.unlink()


async def test_statefulset_keeps_names_and_volumes(lab: Any, tmp_path: Path) -> None:
    manifest = write(
        tmp_path,
        "statefulset.yaml",
        f"""\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {STORAGE_CLASS}
provisioner: pinnace.io/host-path
reclaimPolicy: Delete
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector:
    app: web
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: pinnace/busybox:1.0
        command: ["sh", "-c", "[ -f /data/id ] || echo \\"$(hostname) $(cat /proc/sys/kernel/random/uuid)\\" > /data/id; exec serve 80"]
        volumeMounts:
        - name: data
          mountPath: /data
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      storageClassName: {STORAGE_CLASS}
      resources:
        requests:
          storage: 1Mi
""",
    )
    directories: list[str] = []
    try:
        async with lab.api_client() as client, namespace(client, "statefulset") as ns:
            lab.pinctl("apply", "-n", ns, "-f", manifest)
            first = await ready_pods(client, ns, "app=web", 2)
            assert sorted(p.metadata.name for p in first) == ["web-0", "web-1"]
            claims = (await client.list("persistentvolumeclaims", ns)).items
            assert sorted(c.metadata.name for c in claims) == ["data-web-0", "data-web-1"]
            assert {c.status.phase for c in claims} == {"Bound"}
            for claim in claims:
                volume = await client.get("persistentvolumes", claim.spec.volume_name)
                directories.append(volume.spec.host_path.path)  # type: ignore[attr-defined]
            identity = pod_exec(lab, ns, "web-1", "cat", "/data/id").stdout
            assert identity.startswith("web-1 ")
            old_uid = next(p.metadata.uid for p in first if p.metadata.name == "web-1")

            lab.pinctl("delete", "-n", ns, "pod", "web-1")

            async def replaced() -> bool:
                current = [p for p in await pods(client, ns, "app=web") if p.metadata.name == "web-1"]
                return bool(current) and current[0].metadata.uid != old_uid and is_ready(current[0])

            await eventually(replaced, "web-1 to come back", timeout=120)
            assert pod_exec(lab, ns, "web-1", "cat", "/data/id").stdout == identity
            again = (await client.list("persistentvolumeclaims", ns)).items
            assert sorted(c.metadata.name for c in again) == ["data-web-0", "data-web-1"]
    finally:
        lab.pinctl("delete", "storageclass", STORAGE_CLASS, check=False)
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)
