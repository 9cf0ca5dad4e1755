"""The configuration file."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.scheduler.config import ConfigError, load_config, parse_config

EXAMPLE = """
schedulerName: batch-scheduler
percentageOfNodesToScore: 20
scoringStrategy: MostRequested
optimizations: {equivalenceClasses: true, scoreCaching: false, relaxedRandomization: true}
backoff: {initialSeconds: 0.5, maxSeconds: 5}
filters:
  DiskConflict: {enabled: false}
  CheckNodeLabelPresence: {args: {labels: [retiring], presence: false}}
scores:
  ImageLocality: {weight: 3}
  SelectorSpread: {enabled: false}
"""


def test_example_config(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.yaml"
    path.write_text(EXAMPLE)
    config = load_config(path)
    assert config.scheduler_name == "batch-scheduler"
    assert config.percentage_of_nodes_to_score == 20
    assert not config.score_caching and config.equivalence_classes
    assert (config.initial_backoff_seconds, config.max_backoff_seconds) == (0.5, 5.0)
    filters = [f.name for f in config.build_filters()]
    assert "DiskConflict" not in filters and "CheckNodeLabelPresence" in filters
    scores = {s.name: s.weight for s in config.build_scores()}
    assert scores["ImageLocality"] == 3 and "SelectorSpread" not in scores
    assert "MostRequested" in scores and "LeastRequested" not in scores


def test_docs_example_parses() -> None:
    text = (Path(__file__).parents[3] / "docs" / "scheduler.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    parse_config(__import__("yaml").safe_load(block))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"filterz": {}}, "unknown keys"),
        ({"filters": {"Nope": {}}}, "filters.Nope: unknown plugin"),
        ({"scores": {"ImageLocality": {"weight": -1}}}, "weight"),
        ({"scoringStrategy": "Random"}, "scoringStrategy"),
        ({"percentageOfNodesToScore": 101}, "percentageOfNodesToScore"),
        ({"filters": {"CheckServiceAffinity": {}}}, "args.labels"),
        ({"optimizations": {"turbo": True}}, "optimizations.turbo"),
    ],
)
def test_bad_configs_are_refused_with_the_key(data, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)
