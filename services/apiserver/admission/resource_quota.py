"""ResourceQuota admission: refuse a create (or an update that grows usage) that would take a
namespace past any of its quotas, with Kubernetes' message, and charge the quota at once.

Charging in admission, with optimistic concurrency on the quota's status, is what keeps two
concurrent creates from both fitting into the last slot; the quota controller later recomputes
status.used from the objects themselves and so corrects any charge whose write then failed.
A quota the controller has not computed yet is computed here from the namespace's objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pinnace.api.core.v1 import core_pb2
from services.apiserver import errors
from services.apiserver.admission.chain import AdmissionPlugin, Attributes, Operation
from services.machinery import quota
from services.machinery.kinds import REGISTRY
from services.machinery.quantity import format_quantity, parse_quantity

if TYPE_CHECKING:
    from services.apiserver.registry import Registry

_RETRIES = 10


def _format(usage: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(usage.items()))


class ResourceQuotaAdmission(AdmissionPlugin):
    name = "ResourceQuota"

    def __init__(self, registry: Callable[[], Registry]) -> None:
        # A provider, because the plugin is built before the registry it reads.
        self.registry = registry

    async def validate(self, attrs: Attributes) -> None:
        if attrs.subresource or attrs.obj is None or not attrs.info.namespaced:
            return
        if attrs.info.kind not in quota.COUNTED or attrs.operation not in (
            Operation.CREATE,
            Operation.UPDATE,
        ):
            return
        quota_info = REGISTRY.by_name("resourcequotas")
        page = await self.registry().list(quota_info, attrs.namespace)
        if not page.items:  # most namespaces have no quota: nothing to compute
            return
        delta = quota.usage_of(attrs.obj)
        if attrs.operation is Operation.UPDATE and attrs.old is not None:
            delta = quota.subtract(delta, quota.usage_of(attrs.old))
        growth = {k: v for k, v in delta.items() if v.value > 0}
        if not growth and attrs.operation is Operation.UPDATE:
            return
        charged: list[tuple[str, dict[str, str]]] = []
        for item in page.items:
            assert isinstance(item, core_pb2.ResourceQuota)
            self._require_compute(attrs, item)
            relevant = {k: v for k, v in growth.items() if k in item.spec.hard}
            if not relevant:
                continue
            if not attrs.dry_run:
                await self._charge(attrs, item.metadata.name, relevant)
                charged.append((item.metadata.name, {k: format_quantity(v) for k, v in relevant.items()}))
            else:
                await self._check(attrs, item, relevant)
        attrs.taken["quota"] = charged

    def _require_compute(self, attrs: Attributes, item: core_pb2.ResourceQuota) -> None:
        if not isinstance(attrs.obj, core_pb2.Pod) or attrs.operation is not Operation.CREATE:
            return
        missing = []
        for resource in item.spec.hard:
            prefix, _, name = resource.partition(".")
            if resource in quota.COMPUTE:
                prefix, name = "requests", resource
            if prefix not in ("requests", "limits") or name not in quota.COMPUTE:
                continue
            field = "requests" if prefix == "requests" else "limits"
            for container in attrs.obj.spec.containers:
                if name not in getattr(container.resources, field):
                    missing.append(f"{prefix}.{name}")
                    break
        if missing:
            raise errors.forbidden(
                attrs.info,
                attrs.name,
                f"failed quota: {item.metadata.name}: must specify {','.join(sorted(set(missing)))}",
            )

    async def _used(self, attrs: Attributes, item: core_pb2.ResourceQuota) -> dict[str, str]:
        if all(k in item.status.used for k in item.spec.hard):
            return dict(item.status.used)
        objects = []
        for kind in quota.COUNTED:
            info = REGISTRY.by_gvk("v1", kind)
            objects.extend((await self.registry().list(info, attrs.namespace)).items)
        computed = quota.restrict(quota.total(objects), item.spec.hard)
        return {**computed, **dict(item.status.used)}

    def _exceeded(
        self, item: core_pb2.ResourceQuota, used: dict[str, str], wanted: quota.Usage
    ) -> str | None:
        over = [
            k
            for k, v in wanted.items()
            if parse_quantity(used.get(k, "0")) + v > parse_quantity(item.spec.hard[k])
        ]
        if not over:
            return None
        return (
            f"exceeded quota: {item.metadata.name}, "
            f"requested: {_format({k: format_quantity(wanted[k]) for k in over})}, "
            f"used: {_format({k: used.get(k, '0') for k in over})}, "
            f"limited: {_format({k: item.spec.hard[k] for k in over})}"
        )

    async def _check(self, attrs: Attributes, item: core_pb2.ResourceQuota, wanted: quota.Usage) -> None:
        message = self._exceeded(item, await self._used(attrs, item), wanted)
        if message is not None:
            raise errors.forbidden(attrs.info, attrs.name, message)

    async def _charge(self, attrs: Attributes, name: str, wanted: quota.Usage) -> None:
        info = REGISTRY.by_name("resourcequotas")
        for _ in range(_RETRIES):
            item = await self.registry().get(info, attrs.namespace, name)
            assert isinstance(item, core_pb2.ResourceQuota)
            used = await self._used(attrs, item)
            message = self._exceeded(item, used, wanted)
            if message is not None:
                raise errors.forbidden(attrs.info, attrs.name, message)
            for key, value in wanted.items():
                used[key] = format_quantity(parse_quantity(used.get(key, "0")) + value)
            item.status.used.clear()
            item.status.used.update(used)
            item.status.hard.clear()
            item.status.hard.update(item.spec.hard)
            try:
                await self.registry().update(item, subresource="status")
                return
            except errors.APIError as exc:
                if exc.reason != "Conflict":
                    raise
        raise errors.APIError("Conflict", f"quota {name} kept changing; retry")

    async def rollback(self, attrs: Attributes) -> None:
        """The write failed after the charge: give the usage back (best effort; the quota
        controller's recount is the backstop)."""
        info = REGISTRY.by_name("resourcequotas")
        for name, charged in attrs.taken.pop("quota", []):
            for _ in range(_RETRIES):
                try:
                    item = await self.registry().get(info, attrs.namespace, name)
                except errors.APIError:
                    break
                assert isinstance(item, core_pb2.ResourceQuota)
                for key, value in charged.items():
                    if key in item.status.used:
                        left = parse_quantity(item.status.used[key]) - parse_quantity(value)
                        item.status.used[key] = format_quantity(
                            left if left.value > 0 else parse_quantity("0")
                        )
                try:
                    await self.registry().update(item, subresource="status")
                    break
                except errors.APIError as exc:
                    if exc.reason != "Conflict":
                        break
