"""Priority admission (Kubernetes' Priority plugin): a new pod's spec.priorityClassName is
resolved to spec.priority and spec.preemptionPolicy; a pod without one gets the globalDefault
class (the lowest-valued one, should a race have made several), or priority 0. An unknown class
is refused, as is a pod that states a priority or preemption policy different from its class's.
The system classes always exist, even before anyone creates them as objects. PriorityClasses
themselves: at most one may be the global default.

The scheduler orders its queue and chooses preemption victims by spec.priority; this is where
that number comes from.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pinnace.api.core.v1 import core_pb2
from pinnace.api.scheduling.v1 import scheduling_pb2
from services.apiserver import errors
from services.apiserver.admission.chain import AdmissionPlugin, Attributes, Operation
from services.machinery.kinds import REGISTRY

SYSTEM_CLASSES = {"system-cluster-critical": 2_000_000_000, "system-node-critical": 2_000_001_000}
PREEMPT_LOWER = "PreemptLowerPriority"


def _system_class(name: str) -> scheduling_pb2.PriorityClass:
    pc = scheduling_pb2.PriorityClass(value=SYSTEM_CLASSES[name], preemption_policy=PREEMPT_LOWER)
    pc.metadata.name = name
    return pc


class Priority(AdmissionPlugin):
    name = "Priority"

    def __init__(self, registry: Any = None) -> None:
        # The apiserver's Registry; settable after construction because the registry is built
        # by the APIServer that receives this plugin.
        self.registry = registry
        self.info = REGISTRY.by_name("priorityclasses")

    async def _get(self, name: str) -> scheduling_pb2.PriorityClass | None:
        found = await self.registry.get_cached(self.info, "", name)
        if found is None:
            with contextlib.suppress(errors.APIError):
                found = await self.registry.get(self.info, "", name)
        if found is None and name in SYSTEM_CLASSES:
            return _system_class(name)
        assert found is None or isinstance(found, scheduling_pb2.PriorityClass)
        return found

    def _classes(self) -> list[scheduling_pb2.PriorityClass]:
        cache = self.registry.caches.get(self.info.plural)
        return [] if cache is None else list(cache.objects.values())

    def _default(self) -> scheduling_pb2.PriorityClass | None:
        defaults = [pc for pc in self._classes() if pc.global_default]
        return min(defaults, key=lambda pc: pc.value, default=None)

    async def admit(self, attrs: Attributes) -> None:
        if attrs.operation is not Operation.CREATE or attrs.subresource:
            return
        if isinstance(attrs.obj, core_pb2.Pod):
            await self._admit_pod(attrs, attrs.obj)

    async def _admit_pod(self, attrs: Attributes, pod: core_pb2.Pod) -> None:
        spec = pod.spec
        if spec.priority_class_name:
            pc = await self._get(spec.priority_class_name)
            if pc is None:
                raise errors.forbidden(
                    attrs.info, attrs.name, f"no PriorityClass with name {spec.priority_class_name} was found"
                )
        else:
            pc = self._default()
            if pc is not None:
                spec.priority_class_name = pc.metadata.name
        priority = pc.value if pc is not None else 0
        policy = (
            pc.preemption_policy if pc is not None and pc.HasField("preemption_policy") else PREEMPT_LOWER
        )
        if spec.HasField("priority") and spec.priority != priority:
            raise errors.forbidden(
                attrs.info,
                attrs.name,
                f"the integer value of priority ({spec.priority}) must not be provided in pod spec; "
                f"priority admission controller computed {priority} from the given PriorityClass name",
            )
        if spec.HasField("preemption_policy") and spec.preemption_policy != policy:
            raise errors.forbidden(
                attrs.info,
                attrs.name,
                f"the string value of PreemptionPolicy ({spec.preemption_policy}) must not be provided "
                f"in pod spec; priority admission controller computed {policy} from the given "
                "PriorityClass name",
            )
        spec.priority = priority
        spec.preemption_policy = policy

    async def validate(self, attrs: Attributes) -> None:
        pc = attrs.obj
        if (
            attrs.operation not in (Operation.CREATE, Operation.UPDATE)
            or not isinstance(pc, scheduling_pb2.PriorityClass)
            or not pc.global_default
        ):
            return
        for other in self._classes():
            if other.global_default and other.metadata.name != pc.metadata.name:
                raise errors.forbidden(
                    attrs.info,
                    attrs.name,
                    f"PriorityClass {other.metadata.name} is already marked as default. "
                    "Only one default can exist",
                )
