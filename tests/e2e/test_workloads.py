"""Workload controllers on 1 master + 2 nodes, driven with pinctl as a user would: a Deployment
rolls out, rolls back and scales; a DaemonSet runs one pod on each node; a Job runs to
completion.
"""

from __future__ import annotations

from typing import Any

import pytest

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.batch.v1 import batch_pb2
from tests.e2e.support import EXAMPLES, eventually, namespace, pods, ready_pods

pytestmark = pytest.mark.e2e

REVISION = "deployment.kubernetes.io/revision"


def images(pod_list: list[Any]) -> set[str]:
    return {c.image for p in pod_list for c in p.spec.containers}


async def _replica_sets(client: Any, ns: str) -> list[apps_pb2.ReplicaSet]:
    return [rs for rs in (await client.list("replicasets", ns)).items if isinstance(rs, apps_pb2.ReplicaSet)]


async def test_deployment_rolls_out_rolls_back_and_scales(lab: Any) -> None:
    async with lab.api_client() as client, namespace(client, "deploy") as ns:
        lab.pinctl("apply", "-n", ns, "-f", str(EXAMPLES / "workloads" / "frontend-deployment.yaml"))
        lab.pinctl("rollout", "status", "-n", ns, "deployment/frontend", "--timeout=180s")
        first = await ready_pods(client, ns, "tier=frontend", 3)
        assert images(first) == {"pinnace/busybox:1.0"}

        lab.pinctl("set", "image", "-n", ns, "deployment/frontend", "tomcat-demo=pinnace/busybox:latest")
        lab.pinctl("rollout", "status", "-n", ns, "deployment/frontend", "--timeout=180s")
        second = await ready_pods(client, ns, "tier=frontend", 3)
        assert images(second) == {"pinnace/busybox:latest"}
        assert not {p.metadata.name for p in first} & {p.metadata.name for p in second}
        by_revision = {rs.metadata.annotations[REVISION]: rs for rs in await _replica_sets(client, ns)}
        assert set(by_revision) == {"1", "2"}
        assert by_revision["1"].spec.replicas == 0 and by_revision["2"].spec.replicas == 3
        history = lab.pinctl("rollout", "history", "-n", ns, "deployment/frontend").stdout
        assert "REVISION" in history and "1" in history and "2" in history

        lab.pinctl("rollout", "undo", "-n", ns, "deployment/frontend")
        lab.pinctl("rollout", "status", "-n", ns, "deployment/frontend", "--timeout=180s")
        back = await ready_pods(client, ns, "tier=frontend", 3)
        assert images(back) == {"pinnace/busybox:1.0"}
        # Undo re-uses revision 1's ReplicaSet, which becomes revision 3.
        by_revision = {rs.metadata.annotations[REVISION]: rs for rs in await _replica_sets(client, ns)}
        assert set(by_revision) == {"2", "3"}
        assert by_revision["3"].spec.template.spec.containers[0].image == "pinnace/busybox:1.0"

        lab.pinctl("scale", "-n", ns, "deployment/frontend", "--replicas=5")
        scaled = await ready_pods(client, ns, "tier=frontend", 5)
        assert {p.spec.node_name for p in scaled} == {n.node_name for n in lab.nodes}
        lab.pinctl("scale", "-n", ns, "deployment/frontend", "--replicas=1")
        await ready_pods(client, ns, "tier=frontend", 1)

        async def status_counts_one() -> bool:
            # The ReplicaSet's and then the Deployment's status follow the pods a moment later.
            deployment = await client.get("deployments", "frontend", ns)
            status = deployment.status  # type: ignore[attr-defined]
            return bool(status.ready_replicas == 1 and status.replicas == 1)

        await eventually(status_counts_one, "the Deployment's status to count 1 ready replica", 60)


async def test_daemonset_runs_one_pod_on_each_node(lab: Any) -> None:
    manifest = EXAMPLES / "workloads" / "daemonset.yaml"
    async with lab.api_client() as client:
        lab.pinctl("apply", "-f", str(manifest))
        try:
            daemons = await ready_pods(client, "kube-system", "k8s-app=log-collector", len(lab.nodes))
            assert sorted(p.spec.node_name for p in daemons) == sorted(n.node_name for n in lab.nodes)

            async def status_counts_every_node() -> bool:
                # The DaemonSet's status follows its pods a moment later, as in Kubernetes.
                ds = await client.get("daemonsets", "log-collector", "kube-system")
                status = ds.status  # type: ignore[attr-defined]
                return bool(status.desired_number_scheduled == status.number_ready == len(lab.nodes))

            await eventually(
                status_counts_every_node, "the DaemonSet's status to count a ready pod per node", 60
            )
            # The hostPath /var/log of each node is what the collector sees.
            listing = lab.pinctl(
                "exec", "-n", "kube-system", daemons[0].metadata.name, "--", "ls", "/var/log"
            )
            assert listing.stdout.split(), listing
        finally:
            lab.pinctl("delete", "-f", str(manifest))

        async def gone() -> bool:
            return not await pods(client, "kube-system", "k8s-app=log-collector")

        await eventually(gone, "the DaemonSet's pods to go with it")


async def test_job_runs_to_completion(lab: Any) -> None:
    async with lab.api_client() as client, namespace(client, "job") as ns:
        lab.pinctl("apply", "-n", ns, "-f", str(EXAMPLES / "workloads" / "job.yaml"))

        async def complete() -> batch_pb2.Job | None:
            job = await client.get("jobs", "pi", ns)
            assert isinstance(job, batch_pb2.Job)
            done = any(c.type == "Complete" and c.status == "True" for c in job.status.conditions)
            return job if done else None

        job = await eventually(complete, "job pi to complete", timeout=180)
        assert job.status.succeeded == 1 and job.status.failed == 0
        (pod,) = await pods(client, ns, "job-name=pi")
        assert pod.status.phase == "Succeeded"
        assert pod.status.container_statuses[0].state.terminated.exit_code == 0
        output = lab.pinctl("logs", "-n", ns, pod.metadata.name).stdout
        assert output.startswith("3.14159"), output
