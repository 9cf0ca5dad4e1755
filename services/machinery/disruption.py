"""PodDisruptionBudget rules shared by the three parts that read budgets: the apiserver's
eviction subresource (which spends them), the disruption controller (which computes them) and
the scheduler (which prefers preemption victims that do not break them).

Kept here, below every component, so the three agree on which pods a budget covers and on the
DisruptionAllowed condition, as Kubernetes' pdbhelper package is shared the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from pinnace.api.policy.v1 import policy_pb2
from services.machinery import labels as selectors

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"
# policyv1.DisruptionBudgetCause: the cause type of a refused eviction.
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
ALWAYS_ALLOW = "AlwaysAllow"
# Kubernetes' eviction.MaxDisruptedPodSize: evictions the controller has not confirmed yet.
MAX_DISRUPTED_PODS = 2000
# Kubernetes' disruption.DeletionTimeout: an evicted pod not deleted within this is counted
# again (the eviction's delete must have failed).
DELETION_TIMEOUT_SECONDS = 120.0


def selector(pdb: policy_pb2.PodDisruptionBudget) -> selectors.Selector:
    """policy/v1: an absent selector covers nothing, an empty one the whole namespace; a
    malformed one covers nothing."""
    if not pdb.spec.HasField("selector"):
        return selectors.NOTHING
    try:
        return selectors.from_label_selector(pdb.spec.selector)
    except selectors.SelectorError:
        return selectors.NOTHING


def covers(pdb: policy_pb2.PodDisruptionBudget, namespace: str, pod_labels: Mapping[str, str]) -> bool:
    return pdb.metadata.namespace == namespace and selector(pdb).matches(pod_labels)


def is_pod_ready(pod: core_pb2.Pod) -> bool:
    """The budget's notion of healthy: the pod's Ready condition is True."""
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


def set_condition(
    status: policy_pb2.PodDisruptionBudgetStatus, kind: str, value: str, reason: str, message: str = ""
) -> None:
    """apimeta.SetStatusCondition: the transition time moves only when the status does."""
    for condition in status.conditions:
        if condition.type == kind:
            if condition.status != value:
                condition.status = value
                condition.last_transition_time.FromSeconds(int(time.time()))
            condition.reason = reason
            condition.message = message
            condition.observed_generation = status.observed_generation
            return
    added = status.conditions.add(
        type=kind,
        status=value,
        reason=reason,
        message=message,
        observed_generation=status.observed_generation,
    )
    added.last_transition_time.FromSeconds(int(time.time()))


def update_allowed_condition(status: policy_pb2.PodDisruptionBudgetStatus) -> None:
    """pdbhelper.UpdateDisruptionAllowedCondition."""
    if status.disruptions_allowed > 0:
        set_condition(status, DISRUPTION_ALLOWED, "True", SUFFICIENT_PODS)
    else:
        set_condition(status, DISRUPTION_ALLOWED, "False", INSUFFICIENT_PODS)


def condition(status: policy_pb2.PodDisruptionBudgetStatus, kind: str) -> meta_pb2.Condition | None:
    for found in status.conditions:
        if found.type == kind:
            return found
    return None
