"""`pinctl rolling-update` against the in-process apiserver with the real replication
controller and garbage collector running, and a fake kubelet that makes each pod Ready a
little after it lands on a node: the update must never leave fewer than the desired number of
pods available nor run more than one extra pod, and it prints kubectl's progress lines."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pinnace.api.core.v1 import core_pb2
from services.cli.ops import rolling_update as ru
from services.cli.ops.objects import is_available
from services.client.client import Client
from services.client.errors import NotFoundError
from services.controllers.garbagecollector import GarbageCollector
from services.controllers.replicaset import ReplicationControllerController
from services.machinery import codec
from tests.unit.cli.conftest import Pinctl
from tests.unit.controllers.fakes import FakeKubelet, Harness, until

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "rc-demo"
FAST = ("--update-period=0s", "--poll-interval=20ms", "--timeout=20s")

FRONT = """
apiVersion: v1
kind: ReplicationController
metadata: {name: front, namespace: default}
spec:
  replicas: 2
  selector: {app: front}
  template:
    metadata: {labels: {app: front}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
"""


@dataclass
class SlowKubelet:
    """Marks bound pods Running and Ready `delay` seconds after it first sees them, while
    `ready` is set; counts what a Service would see meanwhile."""

    client: Client
    fake: FakeKubelet
    delay: float = 0.15
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    first_seen: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        while True:
            if self.ready.is_set():
                for pod in (await self.client.list("pods", "default")).items:
                    if not pod.spec.node_name or pod.status.phase != "Pending":
                        continue
                    if pod.metadata.HasField("deletion_timestamp"):
                        continue
                    seen = self.first_seen.setdefault(pod.metadata.uid, time.monotonic())
                    if time.monotonic() - seen >= self.delay:
                        await self.fake.set_status("default", pod.metadata.name, expect="Pending")
            await asyncio.sleep(0.02)


@pytest.fixture
async def cluster(client: Client) -> AsyncIterator[SlowKubelet]:
    harness = Harness(client)
    harness.add(ReplicationControllerController)
    harness.add(GarbageCollector)
    await harness.start()
    fake = FakeKubelet(client)
    fake.auto_ready = False
    await fake.start()
    slow = SlowKubelet(client, fake)
    slow.ready.set()
    task = asyncio.create_task(slow.run())
    yield slow
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await fake.stop()
    await harness.stop()


async def pods_of(client: Client, selector: str) -> list[core_pb2.Pod]:
    return list((await client.list("pods", "default", label_selector=selector)).items)


async def wait_available(client: Client, selector: str, count: int) -> None:
    async def enough() -> bool:
        return sum(1 for p in await pods_of(client, selector) if is_available(p)) == count

    await until(enough, timeout=20)


async def get_rc(client: Client, name: str) -> core_pb2.ReplicationController:
    return await client.get("replicationcontrollers", name, "default")


@contextlib.asynccontextmanager
async def availability(client: Client, selector: str) -> AsyncIterator[list[tuple[int, int]]]:
    """(available, running) pod counts sampled while the block runs."""
    samples: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            pods = await pods_of(client, selector)
            active = [p for p in pods if not p.metadata.HasField("deletion_timestamp")]
            samples.append((sum(1 for p in active if is_available(p)), len(active)))
            await asyncio.sleep(0.01)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        done.set()
        await task


async def test_update_from_file_keeps_every_pod_available(
    pinctl: Pinctl, client: Client, cluster: SlowKubelet
) -> None:
    await client.create(codec.from_yaml((EXAMPLES / "rc-demo-v0.1.yaml").read_text()))
    await wait_available(client, "app=rc-demo", 4)
    v2 = str(EXAMPLES / "rc-demo-v0.2.yaml")
    async with availability(client, "app=rc-demo") as samples:
        result = await pinctl("rolling-update", "rc-demo-v0.1", "-f", v2, *FAST)
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "Created rc-demo-v0.2",
        "Scaling up rc-demo-v0.2 from 0 to 4, scaling down rc-demo-v0.1 from 4 to 0 "
        "(keep 4 pods available, don't exceed 5 pods)",
        "Scaling rc-demo-v0.2 up to 1",
        "Scaling rc-demo-v0.1 down to 3",
        "Scaling rc-demo-v0.2 up to 2",
        "Scaling rc-demo-v0.1 down to 2",
        "Scaling rc-demo-v0.2 up to 3",
        "Scaling rc-demo-v0.1 down to 1",
        "Scaling rc-demo-v0.2 up to 4",
        "Scaling rc-demo-v0.1 down to 0",
        "Update succeeded. Deleting rc-demo-v0.1",
        'replicationcontroller/rc-demo-v0.1 rolling updated to "rc-demo-v0.2"',
    ]
    assert samples and min(a for a, _ in samples) >= 4
    assert max(n for _, n in samples) <= 5
    with pytest.raises(NotFoundError):
        await get_rc(client, "rc-demo-v0.1")
    new = await get_rc(client, "rc-demo-v0.2")
    assert new.spec.replicas == 4
    assert not {ru.SOURCE_ID, ru.DESIRED_REPLICAS} & set(new.metadata.annotations)
    await wait_available(client, "app=rc-demo,version=v0.2", 4)


async def test_image_update_keeps_the_name_and_the_pods(
    pinctl: Pinctl, client: Client, cluster: SlowKubelet
) -> None:
    await client.create(codec.from_yaml(FRONT))
    await wait_available(client, "app=front", 2)
    async with availability(client, "app=front") as samples:
        result = await pinctl("rolling-update", "front", "--image=pinnace/busybox:2.0", *FAST)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    created = lines[0].removeprefix("Created ")
    assert created.startswith("front-") and created != "front"
    digest = created.removeprefix("front-")
    assert lines == [
        f"Created {created}",
        f"Scaling up {created} from 0 to 2, scaling down front from 2 to 0 "
        "(keep 2 pods available, don't exceed 3 pods)",
        f"Scaling {created} up to 1",
        "Scaling front down to 1",
        f"Scaling {created} up to 2",
        "Scaling front down to 0",
        "Update succeeded. Deleting old controller: front",
        f"Renaming {created} to front",
        "replicationcontroller/front rolling updated",
    ]
    assert min(a for a, _ in samples) >= 2 and max(n for _, n in samples) <= 3
    with pytest.raises(NotFoundError):
        await get_rc(client, created)
    front = await get_rc(client, "front")
    assert front.spec.template.spec.containers[0].image == "pinnace/busybox:2.0"
    assert front.spec.selector["deployment"] == front.spec.template.metadata.labels["deployment"]
    assert front.spec.selector["deployment"] == digest

    async def adopted() -> bool:
        pods = [
            p for p in await pods_of(client, "app=front") if not p.metadata.HasField("deletion_timestamp")
        ]
        return len(pods) == 2 and all(
            any(r.uid == front.metadata.uid and r.controller for r in p.metadata.owner_references)
            for p in pods
        )

    await until(adopted, timeout=20)
    # The renamed controller adopted the pods the temporary one made: none was replaced.
    survivors = [p for p in await pods_of(client, "app=front") if is_available(p)]
    assert len(survivors) == 2
    assert all(p.metadata.name.startswith(f"{created}-") for p in survivors)
    assert {p.spec.containers[0].image for p in await pods_of(client, "app=front")} == {"pinnace/busybox:2.0"}


async def test_timeout_then_rollback_restores_the_original(
    pinctl: Pinctl, client: Client, cluster: SlowKubelet
) -> None:
    await client.create(codec.from_yaml(FRONT))
    await wait_available(client, "app=front", 2)
    cluster.ready.clear()  # new pods never become Ready: the update cannot make progress
    stuck = await pinctl(
        "rolling-update",
        "front",
        "front-v2",
        "--image=pinnace/busybox:2.0",
        "--update-period=0s",
        "--poll-interval=20ms",
        "--timeout=500ms",
    )
    assert stuck.code == 1
    assert stuck.err == "error: timed out waiting for any update progress to be made\n"
    assert "Scaling front-v2 up to 1" in stuck.out
    partial = await get_rc(client, "front-v2")
    assert (partial.spec.replicas, (await get_rc(client, "front")).spec.replicas) == (1, 2)
    assert (await get_rc(client, "front")).metadata.annotations[ru.NEXT_CONTROLLER] == "front-v2"

    back = await pinctl("rolling-update", "front", "front-v2", "--rollback", *FAST)
    assert back.code == 0, back.err
    assert back.out.splitlines() == [
        'Setting "front" replicas to 2',
        "Continuing update with existing controller front.",
        "Scaling up front from 2 to 2, scaling down front-v2 from 1 to 0 "
        "(keep 2 pods available, don't exceed 3 pods)",
        "Scaling front-v2 down to 0",
        "Update succeeded. Deleting front-v2",
        "replicationcontroller/front rolling updated",
    ]
    with pytest.raises(NotFoundError):
        await get_rc(client, "front-v2")
    front = await get_rc(client, "front")
    assert front.spec.replicas == 2
    assert front.spec.template.spec.containers[0].image == "pinnace/busybox:1.0"

    async def only_old_pods() -> bool:
        pods = await pods_of(client, "app=front")
        return {p.spec.containers[0].image for p in pods} == {"pinnace/busybox:1.0"}

    await until(only_old_pods, timeout=20)


async def test_bad_input_changes_nothing(
    pinctl: Pinctl, client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await client.create(codec.from_yaml((EXAMPLES / "rc-demo-v0.1.yaml").read_text()))
    before = await get_rc(client, "rc-demo-v0.1")
    same_selector = tmp_path / "same-selector.yaml"
    same_selector.write_text(
        (EXAMPLES / "rc-demo-v0.1.yaml").read_text().replace("name: rc-demo-v0.1", "name: rc-demo-v0.9")
    )
    same_name = tmp_path / "same-name.yaml"
    same_name.write_text(
        (EXAMPLES / "rc-demo-v0.2.yaml").read_text().replace("name: rc-demo-v0.2", "name: rc-demo-v0.1")
    )
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "pinnace/busybox:1.0"}]}
""")
    v2 = str(EXAMPLES / "rc-demo-v0.2.yaml")
    cases = {
        ("rc-demo-v0.1",): (2, "error: Must specify --filename or --image for new controller\n"),
        ("rc-demo-v0.1", "-f", v2, "--image=x:1"): (
            2,
            "error: --filename and --image can not both be specified\n",
        ),
        ("rc-demo-v0.1", "--rollback", "-f", v2): (
            2,
            "error: Don't specify --filename or --image on rollback\n",
        ),
        ("-f", v2): (2, "error: Must specify the controller to update\n"),
        ("rc-demo-v0.1", "-f", str(same_selector)): (
            1,
            f"error: {same_selector} must specify a matching key with non-equal value in Selector for rc-demo-v0.1\n",
        ),
        ("rc-demo-v0.1", "-f", str(same_name)): (
            1,
            f"error: {same_name} cannot have the same name as the existing ReplicationController rc-demo-v0.1\n",
        ),
        ("rc-demo-v0.1", "-f", str(deployment)): (
            1,
            f"error: {deployment} contains a apps/v1, Kind=Deployment not a ReplicationController\n",
        ),
        ("rc-demo-v0.1", "-f", str(tmp_path / "absent.yaml")): (
            1,
            f'error: the path "{tmp_path / "absent.yaml"}" does not exist\n',
        ),
        ("rc-demo-v0.1", "--image=pinnace/busybox:1.0"): (
            1,
            "error: --image-pull-policy (Always|Never|IfNotPresent) must be provided when --image is the "
            "same as existing container image\n",
        ),
        ("rc-demo-v0.1", "--image=x:2", "--container=nope"): (1, "error: container nope not found in pod\n"),
        ("rc-demo-v0.1", "--rollback"): (1, "error: Could not find  to rollback.\n"),
        ("nope", "-f", v2): (1, 'Error from server (NotFound): replicationcontrollers "nope" not found\n'),
    }
    for argv, (code, err) in cases.items():
        result = await pinctl("rolling-update", *argv, *FAST)
        assert (result.code, result.err) == (code, err), argv
    dry = await pinctl("rolling-update", "rc-demo-v0.1", "-f", v2, "--dry-run")
    assert dry.out == "Rolling from:\nrc-demo-v0.1\nTo:\nrc-demo-v0.2\n"
    bad_period = await pinctl("rolling-update", "rc-demo-v0.1", "-f", v2, "--update-period=soon")
    assert bad_period.code == 2
    assert 'time: invalid duration "soon"' in capsys.readouterr().err
    names = {rc.metadata.name for rc in (await client.list("replicationcontrollers", "default")).items}
    assert names == {"rc-demo-v0.1"}
    after = await get_rc(client, "rc-demo-v0.1")
    assert after.metadata.resource_version == before.metadata.resource_version
