"""A/B experiments from configuration: parsing, stable assignment, per-variant statistics."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamrec_core.constants import DEFAULT_VARIANT


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    weight: float
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Experiment:
    id: str
    variants: tuple[Variant, ...]

    def assign(self, user_id: str) -> Variant:
        """The user's variant: a stable hash of experiment id and user id over the variants' weights."""
        point = bucket(self.id, user_id) * sum(v.weight for v in self.variants)
        for variant in self.variants:
            point -= variant.weight
            if point < 0:
                return variant
        return self.variants[-1]


def bucket(experiment_id: str, user_id: str) -> float:
    """A uniform number in [0, 1) fixed by (experiment id, user id)."""
    digest = hashlib.sha256(f"{experiment_id}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def parse_experiments(raw: str) -> tuple[Experiment, ...]:
    """ENV_EXPERIMENTS: [{"id", "variants": [{"name", "weight", "params"}]}]; ValueError when malformed."""
    data = json.loads(raw) if raw.strip() else []
    if not isinstance(data, list):
        raise ValueError("experiments must be a JSON list")
    experiments = []
    for entry in data:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str) or not entry["id"]:
            raise ValueError("every experiment needs an id")
        variants = []
        for v in entry.get("variants") or []:
            if not isinstance(v, Mapping) or not isinstance(v.get("name"), str) or not v["name"]:
                raise ValueError(f"experiment {entry['id']}: every variant needs a name")
            weight = v.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
                raise ValueError(f"experiment {entry['id']}: variant {v['name']} needs a positive weight")
            params = v.get("params") or {}
            if not isinstance(params, Mapping):
                raise ValueError(f"experiment {entry['id']}: variant {v['name']} params must be an object")
            variants.append(Variant(v["name"], float(weight), dict(params)))
        if not variants:
            raise ValueError(f"experiment {entry['id']} has no variants")
        experiments.append(Experiment(entry["id"], tuple(variants)))
    return tuple(experiments)


def assign(experiments: Sequence[Experiment], user_id: str) -> tuple[str | None, Variant]:
    """(experiment id, variant) governing a user's recommendations: the first configured experiment."""
    if not experiments:
        return None, Variant(DEFAULT_VARIANT, 1.0)
    experiment = experiments[0]
    return experiment.id, experiment.assign(user_id)


@dataclass(frozen=True, slots=True)
class Rate:
    value: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "low": self.low, "high": self.high}


def wilson(successes: int, trials: int, z: float = 1.959963984540054) -> Rate:
    """A proportion with its Wilson score interval (95% by default); all None without trials."""
    if trials <= 0:
        return Rate(None, None, None)
    successes = max(0, min(successes, trials))
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return Rate(p, max(0.0, centre - half), min(1.0, centre + half))
