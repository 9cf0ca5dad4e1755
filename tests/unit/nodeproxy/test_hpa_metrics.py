"""The HPA's default metrics source: pod CPU from the kubelets' stats summaries through the
apiserver (the kubelet double reports pod p at 5m + 2.5m over its two containers)."""

from __future__ import annotations

import asyncio

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.autoscaling.v1 import autoscaling_pb2
from services.controllers.hpa_metrics import KubeletMetrics
from services.controllers.podautoscaler import HorizontalPodAutoscalerController
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import Harness
from tests.unit.nodeproxy.conftest import ProxyCluster, node, running_pod

RS = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: "pinnace/busybox:1.0", resources: {requests: {cpu: 10m}}}]
"""

HPA = """
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: ReplicaSet, name: web}
  minReplicas: 1
  maxReplicas: 5
  targetCPUUtilizationPercentage: 50
"""


async def test_pod_cpu_from_the_nodes_the_pods_run_on(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await admin.create(node("down", 1))  # nothing listens on port 1
    placement = {"p": "n1", "q": "down", "pending": ""}
    source = KubeletMetrics(admin.node_proxy, lambda namespace, name: placement.get(name, ""))
    assert await source.pod_cpu_millicores("default", ["p", "q", "pending"]) == {"p": 7}
    assert await source.pod_cpu_millicores("other", ["p"]) == {}
    assert [method for method, _ in proxy.kubelet.calls] == ["StatsSummary", "StatsSummary"]


async def test_the_hpa_scales_on_kubelet_metrics(proxy: ProxyCluster) -> None:
    admin = proxy.client()
    await admin.create(manifest(RS))
    await running_pod(admin, labels={"app": "web"}, cpu_request="10m")
    harness = Harness(admin)
    harness.add(HorizontalPodAutoscalerController)  # the default source: KubeletMetrics
    await harness.start()
    try:
        await admin.create(manifest(HPA))
        for _ in range(200):
            rs = await admin.get("replicasets", "web", "default")
            assert isinstance(rs, apps_pb2.ReplicaSet)
            if rs.spec.replicas != 1:
                break
            await asyncio.sleep(0.05)
        # 7m used of 10m requested = 70 % against a 50 % target: ceil(1 * 70 / 50) = 2.
        assert rs.spec.replicas == 2
        hpa = await admin.get("horizontalpodautoscalers", "web", "default")
        assert isinstance(hpa, autoscaling_pb2.HorizontalPodAutoscaler)
        assert hpa.status.current_cpu_utilization_percentage == 70
    finally:
        await harness.stop()
