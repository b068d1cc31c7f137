"""A/B experiments as configured, defined once: the types, the one set of rules, the JSON that carries them
from the CDK settings (cdk.json `experiments`, checked by stacks.settings at synth) to serve
(ENV_EXPERIMENTS, checked again at cold start), and the stable assignment of users to variants.

Experiment ids and variant names follow the event schema's rules for attribution.experiment_id and
attribution.variant: events name them, and GET /v1/experiments/{experiment_id} reads them back.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final

from streamrec_core.constants import DEFAULT_VARIANT
from streamrec_core.ranking import ModelParams
from streamrec_core.schema import A_VARIANT, attribution_id_pattern, experiment_id_violation

WEIGHT_MIN: Final = 0.000001
WEIGHT_MAX: Final = 1_000_000
_VARIANT_RE = re.compile(attribution_id_pattern(A_VARIANT))
_EXPERIMENT_KEYS = frozenset({"id", "variants"})
_VARIANT_KEYS = frozenset({"name", "weight", "params"})


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    weight: float
    params: Mapping[str, Any] = field(default_factory=dict)  # ModelParams overrides, by name


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


def assign(experiments: Sequence[Experiment], user_id: str) -> tuple[str | None, Variant]:
    """(experiment id, variant) governing a user's recommendations: the first configured experiment."""
    if not experiments:
        return None, Variant(DEFAULT_VARIANT, 1.0)
    experiment = experiments[0]
    return experiment.id, experiment.assign(user_id)


def parse_experiments(raw: Any) -> tuple[Experiment, ...]:
    """Experiments from their JSON form, [{"id", "variants": [{"name", "weight", "params"}]}].

    ValueError names the first broken rule with its path, e.g. `experiments[0].variants[1].name ...`.
    """
    if not isinstance(raw, list):
        raise ValueError(f"experiments must be a list, got {type(raw).__name__}")
    experiments = [_experiment(f"experiments[{i}]", entry) for i, entry in enumerate(raw)]
    _distinct([(f"experiments[{i}].id", e.id) for i, e in enumerate(experiments)])
    return tuple(experiments)


def experiments_json(experiments: Sequence[Experiment]) -> str:
    """The JSON form `parse_experiments` reads, compact and stable (ENV_EXPERIMENTS)."""
    return json.dumps(
        [
            {
                "id": e.id,
                "variants": [
                    {"name": v.name, "weight": v.weight, "params": dict(v.params)} for v in e.variants
                ],
            }
            for e in experiments
        ],
        separators=(",", ":"),
        sort_keys=True,
    )


def _experiment(path: str, raw: Any) -> Experiment:
    entry = _object(path, raw, _EXPERIMENT_KEYS)
    experiment_id = entry["id"]
    if experiment_id_violation(experiment_id) is not None:
        raise ValueError(f"{path}.id must match {_VARIANT_RE.pattern}, got {experiment_id!r}")
    raw_variants = entry["variants"]
    if not isinstance(raw_variants, list):
        raise ValueError(f"{path}.variants must be a list, got {type(raw_variants).__name__}")
    if len(raw_variants) < 2:
        raise ValueError(f"{path}.variants needs at least two variants, got {len(raw_variants)}")
    variants = tuple(_variant(f"{path}.variants[{j}]", v) for j, v in enumerate(raw_variants))
    _distinct([(f"{path}.variants[{j}].name", v.name) for j, v in enumerate(variants)])
    return Experiment(experiment_id, variants)


def _variant(path: str, raw: Any) -> Variant:
    entry = _object(path, raw, _VARIANT_KEYS)
    name, weight, params = entry["name"], entry["weight"], entry["params"]
    if not isinstance(name, str) or _VARIANT_RE.fullmatch(name) is None:
        raise ValueError(f"{path}.name must match {_VARIANT_RE.pattern}, got {name!r}")
    is_number = isinstance(weight, int | float) and not isinstance(weight, bool)
    if not is_number or not WEIGHT_MIN <= weight <= WEIGHT_MAX:
        raise ValueError(f"{path}.weight must be a number in [{WEIGHT_MIN}, {WEIGHT_MAX}], got {weight!r}")
    scalars = isinstance(params, Mapping) and all(
        isinstance(v, str | int | float | bool) for v in params.values()
    )
    if not scalars:
        raise ValueError(f"{path}.params must be an object of scalars")
    # Serve ignores unknown names, so a typo would silently make a variant identical to control.
    known = sorted(f.name for f in fields(ModelParams))
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"{path}.params has unknown model parameter(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    try:
        ModelParams.from_params(params)
    except ValueError as exc:
        raise ValueError(f"{path}.params: {exc}") from None
    return Variant(name, float(weight), MappingProxyType(dict(params)))


def _object(path: str, raw: Any, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path} must be an object, got {type(raw).__name__}")
    missing = sorted(keys - set(raw))
    if missing:
        raise ValueError(f"{path}.{missing[0]} is required")
    unknown = sorted(set(raw) - keys)
    if unknown:
        raise ValueError(f"{path} has unknown key(s): {', '.join(map(str, unknown))}")
    return raw


def _distinct(named: list[tuple[str, str]]) -> None:
    seen: set[str] = set()
    for path, value in named:
        if value in seen:
            raise ValueError(f"{path} {value!r} is used twice")
        seen.add(value)
