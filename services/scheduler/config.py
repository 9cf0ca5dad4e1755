"""The scheduler's configuration file: which filters and scores run, the scores' weights, the
scoring strategy, percentageOfNodesToScore, back-off, and the Borg optimisations (each can be
switched off, for ablation). Unknown keys are errors, so a typo never silently does nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from services.scheduler.filters.base import Filter
from services.scheduler.filters.interpod import InterPodAffinity
from services.scheduler.filters.node import NodeName, NodeReady, NodeUnschedulable
from services.scheduler.filters.node_affinity import NodeAffinity
from services.scheduler.filters.policy import CheckNodeLabelPresence, CheckServiceAffinity
from services.scheduler.filters.ports import NodePorts
from services.scheduler.filters.resources import NodeResourcesFit
from services.scheduler.filters.taints import TaintToleration
from services.scheduler.filters.volumes import DiskConflict, VolumeNodeAffinity
from services.scheduler.scores.base import Score
from services.scheduler.scores.images import ImageLocality
from services.scheduler.scores.interpod import InterPodAffinityPreferred
from services.scheduler.scores.node_affinity import NodeAffinityPreferred
from services.scheduler.scores.resources import BalancedResourceAllocation, LeastRequested, MostRequested
from services.scheduler.scores.spread import SelectorSpread
from services.scheduler.scores.taints import TaintTolerationPreferred

DEFAULT_SCHEDULER = "default-scheduler"
# Evaluation order: Kubernetes' order for the node-local filters, then the ones that look at
# other objects (they cost more and cannot be memoised per node).
FILTERS: dict[str, type[Filter]] = {
    c.name: c
    for c in (
        NodeUnschedulable,
        NodeReady,
        NodeName,
        TaintToleration,
        NodeAffinity,
        NodePorts,
        NodeResourcesFit,
        CheckNodeLabelPresence,
        DiskConflict,
        VolumeNodeAffinity,
        CheckServiceAffinity,
        InterPodAffinity,
    )
}
# The policy predicates need arguments; they run only when the config enables them.
DISABLED_BY_DEFAULT = {CheckNodeLabelPresence.name, CheckServiceAffinity.name}
SCORES: dict[str, type[Score]] = {
    c.name: c
    for c in (
        LeastRequested,
        MostRequested,
        BalancedResourceAllocation,
        SelectorSpread,
        NodeAffinityPreferred,
        InterPodAffinityPreferred,
        TaintTolerationPreferred,
        ImageLocality,
    )
}
STRATEGIES = (LeastRequested.name, MostRequested.name)


class ConfigError(ValueError):
    """The configuration file is malformed; the message names the offending key."""


@dataclass
class PluginConfig:
    enabled: bool = True
    weight: int = 1
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class SchedulerConfig:
    scheduler_name: str = DEFAULT_SCHEDULER
    percentage_of_nodes_to_score: int = 0
    scoring_strategy: str = LeastRequested.name
    filters: dict[str, PluginConfig] = field(default_factory=dict)
    scores: dict[str, PluginConfig] = field(default_factory=dict)
    equivalence_classes: bool = True
    score_caching: bool = True
    relaxed_randomization: bool = True
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 10.0
    max_unschedulable_seconds: float = 300.0
    parallel_binds: int = 64

    def __post_init__(self) -> None:
        for name in FILTERS:
            self.filters.setdefault(name, PluginConfig(enabled=name not in DISABLED_BY_DEFAULT))
        for name, cls in SCORES.items():
            self.scores.setdefault(name, PluginConfig(weight=cls.default_weight))

    def build_filters(self) -> list[Filter]:
        return [cls(self.filters[name].args) for name, cls in FILTERS.items() if self.filters[name].enabled]

    def build_scores(self) -> list[Score]:
        built: list[Score] = []
        for name, cls in SCORES.items():
            plugin = self.scores[name]
            if name in STRATEGIES and name != self.scoring_strategy:
                continue
            if plugin.enabled and plugin.weight > 0:
                built.append(cls(plugin.weight, plugin.args))
        return built


_TOP_KEYS = {
    "apiVersion",
    "kind",
    "schedulerName",
    "percentageOfNodesToScore",
    "scoringStrategy",
    "filters",
    "scores",
    "optimizations",
    "backoff",
    "parallelBinds",
}


def _plugins(section: Any, known: dict[str, Any], path: str, defaults: dict[str, PluginConfig]) -> None:
    if section is None:
        return
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: expected a mapping of plugin name to settings")
    for name, given in section.items():
        if name not in known:
            raise ConfigError(f"{path}.{name}: unknown plugin (known: {', '.join(known)})")
        settings = given or {}
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}.{name}: expected a mapping")
        unknown = set(settings) - {"enabled", "weight", "args"}
        if unknown:
            raise ConfigError(f"{path}.{name}: unknown keys {sorted(unknown)}")
        plugin = defaults[name]
        plugin.enabled = bool(settings.get("enabled", True))
        if "weight" in settings:
            weight = settings["weight"]
            if not isinstance(weight, int) or weight < 0:
                raise ConfigError(f"{path}.{name}.weight: must be a non-negative integer")
            plugin.weight = weight
        args = settings.get("args", {})
        if not isinstance(args, dict):
            raise ConfigError(f"{path}.{name}.args: expected a mapping")
        plugin.args = args


def parse_config(data: Any) -> SchedulerConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}")
    config = SchedulerConfig()
    config.scheduler_name = str(data.get("schedulerName", config.scheduler_name))
    percentage = data.get("percentageOfNodesToScore", 0)
    if not isinstance(percentage, int) or not 0 <= percentage <= 100:
        raise ConfigError("percentageOfNodesToScore: must be an integer from 0 to 100")
    config.percentage_of_nodes_to_score = percentage
    strategy = data.get("scoringStrategy", config.scoring_strategy)
    if strategy not in STRATEGIES:
        raise ConfigError(f"scoringStrategy: must be one of {', '.join(STRATEGIES)}")
    config.scoring_strategy = strategy
    _plugins(data.get("filters"), FILTERS, "filters", config.filters)
    _plugins(data.get("scores"), SCORES, "scores", config.scores)
    for name in (CheckNodeLabelPresence.name, CheckServiceAffinity.name):
        plugin = config.filters[name]
        if plugin.enabled and not isinstance(plugin.args.get("labels"), list):
            raise ConfigError(f"filters.{name}.args.labels: a list of label keys is required")
    optimizations = data.get("optimizations") or {}
    known_opts = {
        "equivalenceClasses": "equivalence_classes",
        "scoreCaching": "score_caching",
        "relaxedRandomization": "relaxed_randomization",
    }
    for key, value in optimizations.items():
        if key not in known_opts:
            raise ConfigError(f"optimizations.{key}: unknown (known: {', '.join(known_opts)})")
        setattr(config, known_opts[key], bool(value))
    backoff = data.get("backoff") or {}
    for key, attr in (("initialSeconds", "initial_backoff_seconds"), ("maxSeconds", "max_backoff_seconds")):
        if key in backoff:
            setattr(config, attr, float(backoff[key]))
    if set(backoff) - {"initialSeconds", "maxSeconds"}:
        raise ConfigError(f"backoff: unknown keys {sorted(set(backoff) - {'initialSeconds', 'maxSeconds'})}")
    if "parallelBinds" in data:
        config.parallel_binds = max(1, int(data["parallelBinds"]))
    return config


def load_config(path: str | Path) -> SchedulerConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_config(data)
