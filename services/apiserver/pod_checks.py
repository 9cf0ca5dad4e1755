"""The checks Kubernetes makes on a pod before it proxies logs, exec, attach or port-forward to
its kubelet, with Kubernetes' messages (pkg/registry/core/pod/strategy.go and the kubelet's
validateContainerLogStatus): the container must be named unless the pod has exactly one, the
name must be one of the pod's containers, the pod must be on a node, and logs need a container
that has started at least once."""

from __future__ import annotations

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors


def container_names(pod: core_pb2.Pod) -> list[str]:
    """Init containers first, then containers (Kubernetes' VisitContainers order)."""
    return [c.name for c in (*pod.spec.init_containers, *pod.spec.containers)]


def _go_list(names: list[str]) -> str:
    """How Go prints a []string in these messages: [a b c]."""
    return "[" + " ".join(names) + "]"


def validate_container(pod: core_pb2.Pod, container: str) -> str:
    """The container to use: the named one, or the only one."""
    name = pod.metadata.name
    if not container:
        if len(pod.spec.containers) == 1:
            return pod.spec.containers[0].name
        if not pod.spec.containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        raise errors.bad_request(
            f"a container name must be specified for pod {name}, "
            f"choose one of: {_go_list(container_names(pod))}"
        )
    if container not in container_names(pod):
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def require_node(pod: core_pb2.Pod) -> str:
    if not pod.spec.node_name:
        raise errors.bad_request(f"pod {pod.metadata.name} does not have a host assigned")
    return pod.spec.node_name


def check_log_status(pod: core_pb2.Pod, container: str, previous: bool) -> None:
    """Refuse logs of a container that has none yet, as the kubelet does from the pod status."""
    subject = f'container "{container}" in pod "{pod.metadata.name}"'
    statuses = [*pod.status.container_statuses, *pod.status.init_container_statuses]
    status = next((s for s in statuses if s.name == container), None)
    if status is None:
        # Not reported yet: the kubelet's own status for it says ContainerCreating.
        raise errors.bad_request(f"{subject} is waiting to start: ContainerCreating")
    last = status.last_state.terminated if status.last_state.HasField("terminated") else None
    if previous:
        if last is None or not last.container_id:
            raise errors.bad_request(f"previous terminated {subject} not found")
        return
    if status.state.HasField("running"):
        return
    if status.state.HasField("terminated"):
        if status.state.terminated.container_id or (last is not None and last.container_id):
            return
        raise errors.bad_request(f"{subject} is terminated")
    if last is not None:
        if last.container_id:
            return
        raise errors.bad_request(f"{subject} is terminated")
    if status.state.HasField("waiting"):
        reason = status.state.waiting.reason
        if reason == "ErrImagePull":
            detail = "image can't be pulled"
        elif reason == "ImagePullBackOff":
            detail = "trying and failing to pull image"
        else:
            detail = reason
        raise errors.bad_request(f"{subject} is waiting to start: {detail}")
    raise errors.bad_request(f"{subject} is waiting to start - no logs yet")
