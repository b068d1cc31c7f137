"""A/B experiments as configured (streamrec_core.experiments): the JSON the CDK settings hand serve reads
back to the same experiments, and every rule names the entry that breaks it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from streamrec_core import constants as c
from streamrec_core.experiments import Variant, assign, experiments_json, parse_experiments

RAW: list[dict[str, Any]] = [
    {
        "id": "ranking",
        "variants": [
            {"name": "control", "weight": 1, "params": {}},
            {"name": "recent-heavy", "weight": 3, "params": {"seen_weight": 3}},
        ],
    }
]


def test_the_settings_json_reads_back_to_the_same_experiments() -> None:
    experiments = parse_experiments(copy.deepcopy(RAW))
    assert parse_experiments(json.loads(experiments_json(experiments))) == experiments
    (experiment,) = experiments
    assert experiment.variants[1] == Variant("recent-heavy", 3.0, {"seen_weight": 3})
    assert assign(experiments, "u")[0] == "ranking"
    assert assign((), "u") == (None, Variant(c.DEFAULT_VARIANT, 1.0))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e[0]["variants"].pop(), r"experiments\[0\]\.variants needs at least two variants, got 1"),
        (lambda e: e.append(copy.deepcopy(e[0])), r"experiments\[1\]\.id 'ranking' is used twice"),
        (lambda e: e[0].update(id="a b"), r"experiments\[0\]\.id must match"),
        (lambda e: e[0].update(id="e" * 65), r"experiments\[0\]\.id must match"),
        (
            lambda e: e[0]["variants"][1].update(name="control"),
            r"variants\[1\]\.name 'control' is used twice",
        ),
        (lambda e: e[0]["variants"][0].update(weight=0), r"variants\[0\]\.weight must be a number"),
        (lambda e: e[0]["variants"][0].update(weight=True), r"variants\[0\]\.weight must be a number"),
        (lambda e: e[0]["variants"][0].pop("params"), r"variants\[0\]\.params is required"),
        (lambda e: e[0]["variants"][0].update(extra=1), r"variants\[0\] has unknown key\(s\): extra"),
        (lambda e: e[0]["variants"][0].update(params={"a": {}}), r"params must be an object of scalars"),
        (lambda e: e[0]["variants"][0].update(params={"seen_wieght": 1}), r"unknown model parameter"),
    ],
)
def test_each_rule_names_the_entry_that_breaks_it(mutate: Any, message: str) -> None:
    raw = copy.deepcopy(RAW)
    mutate(raw)
    with pytest.raises(ValueError, match=message):
        parse_experiments(raw)


def test_a_variants_weight_bounds_are_inclusive() -> None:
    for weight in (0.000001, 1_000_000):
        raw = copy.deepcopy(RAW)
        raw[0]["variants"][0]["weight"] = weight
        assert parse_experiments(raw)[0].variants[0].weight == weight
