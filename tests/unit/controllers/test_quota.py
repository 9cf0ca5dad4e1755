from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.apiserver.admission.limit_ranger import LimitRanger
from services.apiserver.admission.resource_quota import ResourceQuotaAdmission
from services.apiserver.server import APIServer
from services.client.client import Client
from services.client.errors import ForbiddenError
from services.controllers.resourcequota import ResourceQuotaController
from tests.unit.apiserver.conftest import config_for
from tests.unit.apiserver.helpers import manifest, pod
from tests.unit.controllers.fakes import Harness, until

QUOTA = """
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: default}
spec:
  hard: {pods: "2", requests.cpu: "1", limits.memory: 1Gi, configmaps: "1"}
"""

LIMITS = """
apiVersion: v1
kind: LimitRange
metadata: {name: limits, namespace: default}
spec:
  limits:
  - type: Container
    default: {cpu: 300m, memory: 256Mi}
    defaultRequest: {cpu: 200m, memory: 128Mi}
    max: {cpu: "1", memory: 512Mi}
    min: {cpu: 50m}
"""


@pytest.fixture
async def qserver(tmp_path: Path) -> AsyncIterator[APIServer]:
    holder: list[APIServer] = []
    config = config_for(tmp_path)
    config.admission_plugins = [
        p for p in config.admission_plugins if p not in ("LimitRanger", "ResourceQuota")
    ]
    config.extra_admission = [
        LimitRanger(lambda: holder[0].registry),
        ResourceQuotaAdmission(lambda: holder[0].registry),
    ]
    apiserver = APIServer(config)
    holder.append(apiserver)
    await apiserver.start()
    yield apiserver
    await apiserver.stop(grace=0)


@pytest.fixture
async def qclient(qserver: APIServer) -> AsyncIterator[Client]:
    api = Client.connect(f"127.0.0.1:{qserver.port}", timeout=10)
    yield api
    await api.close()


async def test_limit_ranger_defaults_and_bounds(qclient: Client) -> None:
    await qclient.create(manifest(LIMITS))
    created = await qclient.create(pod("defaulted"))
    resources = created.spec.containers[0].resources
    assert dict(resources.limits) == {"cpu": "300m", "memory": "256Mi"}
    assert dict(resources.requests) == {"cpu": "200m", "memory": "128Mi"}
    assert created.status.qos_class == "Burstable"
    big = pod("big")
    big.spec.containers[0].resources.limits["cpu"] = "2"
    with pytest.raises(ForbiddenError) as exc:
        await qclient.create(big)
    assert "maximum cpu usage per Container is 1, but limit is 2" in str(exc.value)


async def test_quota_refuses_what_would_exceed_it_and_the_controller_recounts(qclient: Client) -> None:
    await qclient.create(manifest(LIMITS))
    await qclient.create(manifest(QUOTA))
    harness = Harness(qclient)
    harness.add(ResourceQuotaController)
    await harness.start()
    try:

        async def computed() -> bool:
            q = await qclient.get("resourcequotas", "compute", "default")
            return dict(q.status.used) == {
                "pods": "0",
                "requests.cpu": "0",
                "limits.memory": "0",
                "configmaps": "0",
            }

        await until(computed)
        await qclient.create(pod("a"))
        await qclient.create(pod("b"))
        with pytest.raises(ForbiddenError) as exc:
            await qclient.create(pod("c"))
        message = str(exc.value)
        assert "exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2" in message
        q = await qclient.get("resourcequotas", "compute", "default")
        assert q.status.used["requests.cpu"] == "400m"
        assert q.status.used["limits.memory"] == "512Mi"
        # Deleting a pod frees its share once the controller recounts.
        await qclient.delete("pods", "a", "default")

        async def freed() -> bool:
            q = await qclient.get("resourcequotas", "compute", "default")
            return q.status.used["pods"] == "1"

        await until(freed)
        await qclient.create(pod("c"))
        await qclient.create(
            manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one, namespace: default}\n")
        )
        with pytest.raises(ForbiddenError):
            await qclient.create(
                manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two, namespace: default}\n")
            )
    finally:
        await harness.stop()


async def test_quota_on_cpu_requires_pods_to_say_their_cpu(qclient: Client) -> None:
    await qclient.create(manifest(QUOTA))
    with pytest.raises(ForbiddenError) as exc:
        await qclient.create(pod("bare"))
    assert "must specify limits.memory,requests.cpu" in str(exc.value)
