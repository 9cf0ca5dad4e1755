"""The HPA's CPU source, as metrics-server feeds Kubernetes' HPA: the stats summaries of the
nodes the pods run on, read through the apiserver's NodeProxy (services/client/
resource_metrics.py); a pod's usage is the sum over its containers. Pods whose node cannot be
read, or which the kubelet does not report yet, have no sample (the controller skips them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog

from pinnace.kubelet.v1 import kubelet_pb2 as kpb
from services.client.resource_metrics import pod_usages, summaries
from services.client.streams import NodeProxyClient

log = structlog.get_logger("controller-manager")

# (namespace, pod name) -> the node it is bound to ("" when unknown or unscheduled).
NodeOf = Callable[[str, str], str]


class KubeletMetrics:
    def __init__(self, proxy: NodeProxyClient, node_of: NodeOf) -> None:
        self.proxy = proxy
        self.node_of = node_of

    async def pod_cpu_millicores(self, namespace: str, pods: list[str]) -> Mapping[str, int]:
        wanted = set(pods)
        nodes = {node for name in wanted if (node := self.node_of(namespace, name))}
        usage: dict[str, int] = {}
        for node, result in (await summaries(self.proxy, nodes)).items():
            if not isinstance(result, kpb.Summary):
                log.info("no stats from node", node=node, error=str(result))
                continue
            for pod in pod_usages(result):
                if pod.namespace == namespace and pod.name in wanted:
                    usage[pod.name] = pod.usage.cpu_millicores
        return usage
