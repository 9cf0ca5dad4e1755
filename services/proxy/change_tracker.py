"""Change tracking between syncs, so a sync touches only the service ports that changed
(DESIGN.md principle 5: hot paths are O(changed)).

Informer handlers call `update(key, value)` with the flattened value of the object (or an empty
map when it is deleted). Per object key the tracker keeps the value the proxier last applied
and the newest one; `apply()` folds the pending changes into the proxier's map and returns the
service ports whose value really differs, so an object that changed and changed back costs
nothing. This is Kubernetes' serviceChangeTracker/endpointsChangeTracker.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

from services.proxy.service_port import ServicePortName

V = TypeVar("V", bound=Hashable)


class ChangeTracker(Generic[V]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # object key -> (value applied at the last sync, newest value)
        self._pending: dict[str, tuple[Mapping[ServicePortName, V], Mapping[ServicePortName, V]]] = {}
        self._applied: dict[str, Mapping[ServicePortName, V]] = {}
        # service port -> earliest unprocessed trigger time (time.time()), for the
        # network programming latency metric
        self._triggers: dict[ServicePortName, float] = {}

    def update(self, key: str, value: Mapping[ServicePortName, V], trigger_time: float | None = None) -> None:
        with self._lock:
            previous = self._pending[key][0] if key in self._pending else self._applied.get(key, {})
            self._pending[key] = (previous, value)
            if trigger_time is not None:
                for name in set(previous) | set(value):
                    self._triggers.setdefault(name, trigger_time)

    def pending(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def apply(self, target: dict[ServicePortName, V]) -> set[ServicePortName]:
        """Fold pending changes into `target`; return the service ports that differ."""
        with self._lock:
            pending, self._pending = self._pending, {}
        changed: set[ServicePortName] = set()
        for key, (previous, current) in pending.items():
            for name in previous:
                if name not in current:
                    target.pop(name, None)
                    changed.add(name)
            for name, value in current.items():
                if previous.get(name) != value:
                    changed.add(name)
                target[name] = value
            if current:
                self._applied[key] = current
            else:
                self._applied.pop(key, None)
        return changed

    def take_triggers(self, names: set[ServicePortName] | None = None) -> dict[ServicePortName, float]:
        """Trigger times of the given ports (all if None), forgotten once taken."""
        with self._lock:
            if names is None:
                taken, self._triggers = self._triggers, {}
                return taken
            return {n: self._triggers.pop(n) for n in names if n in self._triggers}
