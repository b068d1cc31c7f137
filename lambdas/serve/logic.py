"""Serve logic: read feature rows (at most two round trips), rank, shape the response bodies.

No boto3 here: rows come through a small reader port (`streamrec_core.feature_store.FeatureStore` in
Lambda, fakes in tests).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streamrec_core.constants import (
    DDB_BATCH_GET_MAX_KEYS,
    EXPERIMENT_CLICKS,
    EXPERIMENT_IMPRESSIONS,
    EXPERIMENT_PK_PREFIX,
    EXPERIMENT_PURCHASES,
    EXPERIMENT_VARIANT_ATTR,
    MODEL_NAME,
    USER_LAST_EVENT_AT,
)
from streamrec_core.features import Key, Row, item_key, merge_trending, trending_keys, user_key
from streamrec_core.http import ERROR_BAD_REQUEST, ERROR_NOT_FOUND, HttpError
from streamrec_core.ranking import (
    MAX_K,
    ModelParams,
    Recommendation,
    categories_to_fill,
    recommend,
    seed_items,
    similar_items,
)
from streamrec_core.schema import (
    F_CATEGORY,
    F_ITEM_ID,
    ID_CHARSET,
    ITEM_ID_MAX,
    Violation,
    experiment_id_violation,
    field_violation,
)

from serve.experiments import Experiment, assign, wilson

DEFAULT_K = 10
MAX_EXCLUDE = 100
# At most three ASCII digits ([0-9], not \d, which matches every script's digits) before int().
_K_RE = re.compile(r"[0-9]{1,3}")
K_RULE = f"must be an integer between 1 and {MAX_K} in ASCII digits"
EXCLUDE_RULE = (
    f"must be at most {MAX_EXCLUDE} comma-separated item ids, each matching {ID_CHARSET}{{1,{ITEM_ID_MAX}}}"
)
# Trending scores halve every this many event-time hours (the process function's default).
TRENDING_HALF_LIFE_HOURS = 6.0


class RowReader(Protocol):
    def read(self, keys: Iterable[Key], *, consistent: bool = True) -> dict[Key, Row | None]: ...

    def get(self, key: Key, *, consistent: bool = False) -> Row | None: ...

    def query_items(self, pk: str, *, limit: int = 1000) -> list[Row]: ...


@dataclass(frozen=True, slots=True)
class ServeSettings:
    trending_slots: int
    experiments: tuple[Experiment, ...]
    trending_half_life_hours: float = TRENDING_HALF_LIFE_HOURS


@dataclass(frozen=True, slots=True)
class RecommendationResult:
    body: dict[str, Any]
    experiment_id: str | None
    variant: str
    fallback: bool
    items: int


def _bad_parameter(violation: Violation) -> HttpError:
    return HttpError(ERROR_BAD_REQUEST, violation.message(), details=[violation.as_dict()])


def parse_k(raw: str | None) -> int:
    """`k`: ASCII decimal digits only (str.isdigit() also takes '²' and other scripts' digits, which
    int() then rejects or reads), at most three of them, between 1 and MAX_K."""
    if raw is None or raw == "":
        return DEFAULT_K
    if _K_RE.fullmatch(raw) is None or not 1 <= int(raw) <= MAX_K:
        raise _bad_parameter(Violation("k", K_RULE))
    return int(raw)


def parse_id(raw: str | None, name: str) -> str:
    """A user or item id path parameter, held to the event schema's rule for the same field."""
    violation = field_violation(name, raw)
    if violation is not None:
        raise _bad_parameter(violation)
    return raw  # type: ignore[return-value]


def parse_experiment_id(raw: str | None) -> str:
    """An experiment id, held to the rule events carry it under (attribution.experiment_id)."""
    violation = experiment_id_violation(raw)
    if violation is not None:
        raise _bad_parameter(violation)
    return raw  # type: ignore[return-value]


def parse_category(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    violation = field_violation(F_CATEGORY, raw)
    if violation is not None:
        raise _bad_parameter(violation)
    return raw


def parse_exclude(values: Sequence[str]) -> list[str]:
    if len(values) > MAX_EXCLUDE:
        raise _bad_parameter(Violation("exclude", EXCLUDE_RULE))
    for value in values:
        if field_violation(F_ITEM_ID, value) is not None:
            raise _bad_parameter(Violation("exclude", EXCLUDE_RULE))
    return list(values)


def _items(recs: Sequence[Recommendation]) -> list[dict[str, Any]]:
    return [{"item_id": r.item_id, "score": round(r.score, 6), "reason": r.reason} for r in recs]


class Recommender:
    """The read side: recommendations, similar items, experiment results."""

    def __init__(self, reader: RowReader, settings: ServeSettings) -> None:
        self.reader = reader
        self.settings = settings

    def recommendations(
        self,
        user_id: str,
        *,
        k: int = DEFAULT_K,
        category: str | None = None,
        exclude: Sequence[str] = (),
        request_id: str | None = None,
    ) -> RecommendationResult:
        """Rank for one user in at most two BatchGetItem round trips."""
        experiment_id, variant = assign(self.settings.experiments, user_id)
        params = ModelParams.from_params(variant.params)
        slots = self.settings.trending_slots
        half_life = self.settings.trending_half_life_hours

        # Round trip 1: the user row and the global trending list.
        first = self.reader.read([user_key(user_id), *trending_keys(None, slots)], consistent=False)
        user = first.get(user_key(user_id))
        global_trending = merge_trending((first.get(key) for key in trending_keys(None, slots)), half_life)

        # Round trip 2: profiles of the user's recent items and trending lists of their categories.
        seeds = seed_items(user, params)[: DDB_BATCH_GET_MAX_KEYS // 2]
        room = DDB_BATCH_GET_MAX_KEYS - len(seeds)
        categories = categories_to_fill(user, params, category)[: max(0, room // slots)]
        second_keys = [item_key(seed.item_id) for seed in seeds]
        for name in categories:
            second_keys.extend(trending_keys(name, slots))
        second = self.reader.read(second_keys, consistent=False) if second_keys else {}
        profiles = {seed.item_id: second.get(item_key(seed.item_id)) for seed in seeds}
        category_trending = {
            name: merge_trending((second.get(key) for key in trending_keys(name, slots)), half_life)
            for name in categories
        }

        recs, fallback = recommend(
            user,
            profiles,
            category_trending,
            global_trending,
            k=k,
            params=params,
            category=category,
            exclude=exclude,
        )
        body = {
            "user_id": user_id,
            "items": _items(recs),
            "model": MODEL_NAME,
            "experiment_id": experiment_id,
            "variant": variant.name,
            "request_id": request_id or uuid.uuid4().hex,
            "fallback": fallback,
            "features_as_of": user.get(USER_LAST_EVENT_AT) if user else None,
        }
        return RecommendationResult(body, experiment_id, variant.name, fallback, len(recs))

    def similar(self, item_id: str, *, k: int = DEFAULT_K) -> dict[str, Any]:
        """Co-visitation neighbours of one item (one GetItem)."""
        profile = self.reader.get(item_key(item_id))
        if profile is None:
            raise HttpError(ERROR_NOT_FOUND, f"no item {item_id} has been seen")
        return {"item_id": item_id, "items": _items(similar_items(profile, k)), "model": MODEL_NAME}

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        """Per-variant impressions, clicks, purchases, CTR and conversion with 95% Wilson intervals."""
        configured = next((e for e in self.settings.experiments if e.id == experiment_id), None)
        rows = {
            row[EXPERIMENT_VARIANT_ATTR]: row
            for row in self.reader.query_items(EXPERIMENT_PK_PREFIX + experiment_id)
        }
        if configured is None and not rows:
            raise HttpError(ERROR_NOT_FOUND, f"no experiment {experiment_id}")
        names = [v.name for v in configured.variants] if configured else []
        names += sorted(name for name in rows if name not in names)
        weights = {v.name: v.weight for v in configured.variants} if configured else {}
        variants = []
        for name in names:
            row: Mapping[str, Any] = rows.get(name, {})
            impressions = int(row.get(EXPERIMENT_IMPRESSIONS, 0))
            clicks = int(row.get(EXPERIMENT_CLICKS, 0))
            purchases = int(row.get(EXPERIMENT_PURCHASES, 0))
            variants.append(
                {
                    "variant": name,
                    "weight": weights.get(name),
                    "impressions": impressions,
                    "clicks": clicks,
                    "purchases": purchases,
                    "ctr": wilson(clicks, impressions).as_dict(),
                    "conversion": wilson(purchases, impressions).as_dict(),
                }
            )
        return {
            "experiment_id": experiment_id,
            "configured": configured is not None,
            "confidence": 0.95,
            "variants": variants,
        }
