"""ImageLocality: prefer nodes that already hold the pod's images (no pull), weighted by how
widely each image is spread so one node with a popular image does not attract every pod."""

from __future__ import annotations

from services.scheduler.filters.base import CycleState
from services.scheduler.nodeinfo import NodeInfo
from services.scheduler.podinfo import PodInfo
from services.scheduler.scores.base import MAX_NODE_SCORE, Score

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


class ImageLocality(Score):
    name = "ImageLocality"

    def score(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> int:
        if not node.images or not pod.images:
            return 0
        cache = state.cache
        total_nodes = max(cache.node_count(), 1)
        total = 0
        for image in pod.images:
            size = node.images.get(image)
            if size:
                total += int(size * (cache.image_nodes.get(image, 0) / total_nodes))
        high = MAX_CONTAINER_THRESHOLD * len(pod.images)
        total = min(max(total, MIN_THRESHOLD), high)
        return MAX_NODE_SCORE * (total - MIN_THRESHOLD) // (high - MIN_THRESHOLD)
