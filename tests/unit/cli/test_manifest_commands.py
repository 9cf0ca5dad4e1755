"""create, apply, replace and delete with -f, and delete by name, selector and --all."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from services.apiserver.server import APIServer
from services.cli.app import main_async
from services.cli.threeway import LAST_APPLIED
from services.client.client import Client
from services.client.errors import NotFoundError
from tests.unit.apiserver.helpers import pod
from tests.unit.cli.conftest import Pinctl

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web, tier: front}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: c
        image: {image}
        env: [{env}]
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _deployment(
    image: str = "pinnace/busybox:1.0", env: str = '{name: A, value: "1"}, {name: B, value: "2"}'
) -> str:
    return DEPLOYMENT.format(image=image, env=env)


async def test_apply_created_unchanged_configured(pinctl: Pinctl, client: Client, tmp_path: Path) -> None:
    path = _write(tmp_path / "web.yaml", _deployment() + "---\n" + SERVICE)
    first = await pinctl("apply", "-f", path)
    assert (first.code, first.out) == (0, "deployment.apps/web created\nservice/web created\n")
    created = await client.get("deployments", "web", "default")
    assert '"image":"pinnace/busybox:1.0"' in created.metadata.annotations[LAST_APPLIED]  # type: ignore[attr-defined]
    again = await pinctl("apply", "-f", path)
    assert again.out == "deployment.apps/web unchanged\nservice/web unchanged\n"
    # Another writer's label survives an apply; fields the manifest dropped are removed.
    await client.patch("deployments", "web", {"metadata": {"labels": {"owner": "ops"}}}, "default")
    changed = _deployment(image="pinnace/busybox:2.0", env='{name: A, value: "1"}').replace("tier: front", "")
    _write(tmp_path / "web.yaml", changed)
    third = await pinctl("apply", "-f", path)
    assert third.out == "deployment.apps/web configured\n"
    live = await client.get("deployments", "web", "default")
    assert dict(live.metadata.labels) == {"app": "web", "owner": "ops"}  # type: ignore[attr-defined]
    container = live.spec.template.spec.containers[0]  # type: ignore[attr-defined]
    assert container.image == "pinnace/busybox:2.0"
    assert [e.name for e in container.env] == ["A"]
    assert container.image_pull_policy == "IfNotPresent"  # the server's default is kept
    assert (await pinctl("apply", "-f", path)).out == "deployment.apps/web unchanged\n"


async def test_apply_to_object_created_without_annotation_warns(
    pinctl: Pinctl, client: Client, tmp_path: Path
) -> None:
    path = _write(tmp_path / "svc.yaml", SERVICE)
    assert (await pinctl("create", "-f", path)).out == "service/web created\n"
    result = await pinctl("apply", "-f", path)
    assert "missing the kubectl.kubernetes.io/last-applied-configuration annotation" in result.err
    assert result.out == "service/web configured\n"
    assert (await pinctl("apply", "-f", path)).out == "service/web unchanged\n"


async def test_create_errors_and_save_config(pinctl: Pinctl, client: Client, tmp_path: Path) -> None:
    path = _write(tmp_path / "svc.yaml", SERVICE)
    assert (await pinctl("create", "-f", path, "--save-config")).code == 0
    live = await client.get("services", "web", "default")
    assert LAST_APPLIED in live.metadata.annotations  # type: ignore[attr-defined]
    again = await pinctl("create", "-f", path)
    assert again.code == 1
    assert (
        again.err
        == f'Error from server (AlreadyExists): error when creating "{path}": services "web" already exists\n'
    )
    namespace = await pinctl("create", "namespace", "team-a")
    assert namespace.out == "namespace/team-a created\n"


async def test_invalid_manifest_changes_nothing(pinctl: Pinctl, client: Client, tmp_path: Path) -> None:
    bad = SERVICE + "---\n" + _deployment().replace("image:", "imagee:")
    path = _write(tmp_path / "bad.yaml", bad)
    for verb in ("apply", "create"):
        result = await pinctl(verb, "-f", path)
        assert result.code == 1
        assert result.err.startswith(f'error: error validating "{path}"')
        assert "spec.template.spec.containers[0].imagee: unknown field" in result.err
    assert [s.metadata.name for s in (await client.list("services", "default")).items] == ["kubernetes"]  # type: ignore[attr-defined]


async def test_bad_files(pinctl: Pinctl, tmp_path: Path) -> None:
    missing = await pinctl("apply", "-f", str(tmp_path / "nope.yaml"))
    assert (missing.code, missing.err) == (1, f'error: the path "{tmp_path / "nope.yaml"}" does not exist\n')
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (await pinctl("apply", "-f", str(empty))).err == "error: no objects passed to apply\n"
    other = _write(tmp_path / "ns.yaml", SERVICE.replace("name: web", "name: web, namespace: other"))
    mismatch = await pinctl("apply", "-f", other, "-n", "default")
    assert mismatch.code == 1
    assert (
        'the namespace from the provided object "other" does not match the namespace "default"'
        in mismatch.err
    )
    assert (await pinctl("apply")).code == 2


async def test_folder_recursion(pinctl: Pinctl, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "svc.yaml", SERVICE)
    _write(tmp_path / "sub" / "web.yaml", _deployment())
    flat = await pinctl("create", "-f", str(tmp_path))
    assert flat.out == "service/web created\n"
    nested = await pinctl("apply", "-f", str(tmp_path), "-R")
    assert nested.out.splitlines() == ["deployment.apps/web created", "service/web configured"]


async def test_replace(pinctl: Pinctl, client: Client, tmp_path: Path) -> None:
    path = _write(tmp_path / "svc.yaml", SERVICE)
    missing = await pinctl("replace", "-f", path)
    assert (
        missing.err
        == f'Error from server (NotFound): error when replacing "{path}": services "web" not found\n'
    )
    await pinctl("create", "-f", path)
    _write(tmp_path / "svc.yaml", SERVICE.replace("{app: web}", "{app: web2}"))
    assert (await pinctl("replace", "-f", path)).out == "service/web replaced\n"
    live = await client.get("services", "web", "default")
    assert dict(live.spec.selector) == {"app": "web2"}  # type: ignore[attr-defined]
    forced = await pinctl("replace", "--force", "-f", path)
    assert forced.out == 'service "web" deleted\nservice/web replaced\n'
    assert (await client.get("services", "web", "default")).metadata.uid != live.metadata.uid  # type: ignore[attr-defined]


async def test_delete_forms(pinctl: Pinctl, client: Client, tmp_path: Path) -> None:
    for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
        await client.create(pod(name, labels={"app": app}))
    assert (await pinctl("delete", "pod", "a")).out == 'pod "a" deleted\n'
    assert (await pinctl("delete", "pods", "-l", "app=web")).out == 'pod "b" deleted\n'
    assert (await pinctl("delete", "pods", "--all")).out == 'pod "c" deleted\n'
    assert (await pinctl("delete", "pods", "--all")).err == "No resources found in default namespace.\n"
    missing = await pinctl("delete", "pod/a")
    assert (missing.code, missing.err) == (1, 'Error from server (NotFound): pods "a" not found\n')
    assert (await pinctl("delete", "pod", "a", "--ignore-not-found")).code == 0
    bare = await pinctl("delete", "pods")
    assert (
        bare.err == "error: resource(s) were provided, but no name, label selector, or --all flag specified\n"
    )
    path = _write(tmp_path / "svc.yaml", SERVICE)
    await pinctl("create", "-f", path)
    assert (await pinctl("delete", "-f", path)).out == 'service "web" deleted\n'
    with_args = await pinctl("delete", "-f", path, "svc", "web")
    assert with_args.code == 1
    forced = await pinctl("delete", "ns", "nope", "--force")
    assert forced.err.startswith("Warning: Immediate deletion does not wait")


async def test_delete_waits_until_the_object_is_gone(server: APIServer, client: Client) -> None:
    await client.create(pod("web", node="n1"))  # bound: deletion waits for the kubelet
    out, err = io.StringIO(), io.StringIO()
    argv = ["--server", f"127.0.0.1:{server.port}", "--insecure-plaintext", "delete", "pod", "web"]
    task = asyncio.create_task(main_async(argv, out=out, err=err))
    while out.getvalue() != 'pod "web" deleted\n':
        assert not task.done(), err.getvalue()
        await asyncio.sleep(0.02)
    terminating = await client.get("pods", "web", "default")
    assert terminating.metadata.HasField("deletion_timestamp")  # type: ignore[attr-defined]
    await asyncio.sleep(0.2)
    assert not task.done()  # still waiting for the kubelet's confirmation
    await client.delete("pods", "web", "default", grace_period_seconds=0)  # what the kubelet does
    assert await asyncio.wait_for(task, 10) == 0
    try:
        await client.get("pods", "web", "default")
        raise AssertionError("the pod still exists")
    except NotFoundError:
        pass


async def test_delete_no_wait_and_timeout(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("web", node="n1"))
    assert (await pinctl("delete", "pod", "web", "--wait=false")).code == 0
    await client.create(pod("db", node="n1"))
    timed_out = await pinctl("delete", "pod", "db", "--timeout", "200ms")
    assert (timed_out.code, timed_out.err) == (1, "error: timed out waiting for the condition on pods/db\n")
    bad = await pinctl("delete", "pod", "db", "--timeout", "5")
    assert bad.code == 2 and "missing unit" in bad.err
