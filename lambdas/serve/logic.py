"""Serve logic: read feature rows (at most two round trips), rank, shape the response bodies.

No boto3 here: rows come through a small reader port (`features.dynamodb.DynamoStore` in Lambda,
`features.memory_store.MemoryStore` or `features.reference.ReferenceFold` in tests and tools).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from streamrec_core.constants import DDB_BATCH_GET_MAX_KEYS, MODEL_NAME
from streamrec_core.experiments import Experiment, assign
from streamrec_core.features.codec import Row
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.item_aggregates import ItemRow
from streamrec_core.features.keys import Key, item_key, trending_key, user_key
from streamrec_core.features.store import Unreadable
from streamrec_core.features.trending import Trend, TrendingList
from streamrec_core.features.user_fold import UserRow
from streamrec_core.http import ERROR_NOT_FOUND, HttpError
from streamrec_core.params import K_DEFAULT
from streamrec_core.ranking import (
    ModelParams,
    Recommendation,
    categories_to_fill,
    recommend,
    seed_items,
    similar_items,
)
from streamrec_core.responses import (
    ExperimentResult,
    Recommendations,
    ScoredItem,
    SimilarItems,
    VariantResult,
)

from serve.experiments import wilson

# Merged trending lists change at most every merge interval (15 s): serve keeps them this long.
TRENDING_CACHE_SECONDS = 10.0
# Confidence level of the experiment results' intervals (wilson's default z).
CONFIDENCE = 0.95


class RowReader(Protocol):
    # Unreadable rows are served as absent ones (see features.store.Unreadable).
    def get_many(self, keys: Iterable[Key], *, consistent: bool) -> Mapping[Key, Row | Unreadable | None]: ...

    def query_counters(self, experiment_id: str) -> list[CounterRow]: ...


@dataclass(frozen=True, slots=True)
class ServeSettings:
    experiments: tuple[Experiment, ...]
    trending_cache_seconds: float = TRENDING_CACHE_SECONDS


@dataclass
class TrendingCache:
    """Merged trending lists kept per container for a few seconds (they change every merge interval)."""

    ttl_seconds: float
    clock: Callable[[], float] = time.monotonic
    _lists: dict[Key, tuple[float, list[Trend]]] = field(default_factory=dict)

    def get(self, key: Key) -> list[Trend] | None:
        found = self._lists.get(key)
        if found is None or found[0] < self.clock():
            return None
        return found[1]

    def put(self, key: Key, row: Row | Unreadable | None) -> list[Trend]:
        items = row.items if isinstance(row, TrendingList) else []
        if self.ttl_seconds > 0:
            if len(self._lists) > 10_000:
                self._lists.clear()
            self._lists[key] = (self.clock() + self.ttl_seconds, items)
        return items


@dataclass(frozen=True, slots=True)
class RecommendationResult:
    body: Recommendations
    experiment_id: str | None
    variant: str
    fallback: bool
    items: int


def _items(recs: Sequence[Recommendation]) -> list[ScoredItem]:
    return [ScoredItem(r.item_id, round(r.score, 6), r.reason) for r in recs]


class Recommender:
    """The read side: recommendations, similar items, experiment results."""

    def __init__(
        self, reader: RowReader, settings: ServeSettings, *, clock: Callable[[], float] = time.monotonic
    ):
        self.reader = reader
        self.settings = settings
        self.trending = TrendingCache(settings.trending_cache_seconds, clock)

    def recommendations(
        self,
        user_id: str,
        *,
        k: int = K_DEFAULT,
        category: str | None = None,
        exclude: Sequence[str] = (),
        request_id: str | None = None,
    ) -> RecommendationResult:
        """Rank for one user in at most two BatchGetItem round trips (trending lists mostly cached)."""
        experiment_id, variant = assign(self.settings.experiments, user_id)
        params = ModelParams.from_params(variant.params)

        # Round trip 1: the user row, and the global trending list unless cached.
        global_key = trending_key()
        global_trending = self.trending.get(global_key)
        first_keys = [user_key(user_id)] if global_trending is not None else [user_key(user_id), global_key]
        first = self.reader.get_many(first_keys, consistent=False)
        found = first.get(user_key(user_id))
        user = found if isinstance(found, UserRow) else None
        if global_trending is None:
            global_trending = self.trending.put(global_key, first.get(global_key))

        # Round trip 2: the co-visitation rows of the user's recent items, and the trending lists of
        # their categories unless cached.
        seeds = seed_items(user, params)[: DDB_BATCH_GET_MAX_KEYS // 2]
        categories = categories_to_fill(user, params, category)[: DDB_BATCH_GET_MAX_KEYS - len(seeds)]
        category_trending: dict[str, list[Trend]] = {}
        second_keys = [item_key(seed.item_id) for seed in seeds]
        for name in categories:
            cached = self.trending.get(trending_key(name))
            if cached is None:
                second_keys.append(trending_key(name))
            else:
                category_trending[name] = cached
        second = self.reader.get_many(second_keys, consistent=False) if second_keys else {}
        profiles = {seed.item_id: _item_row(second.get(item_key(seed.item_id))) for seed in seeds}
        for name in categories:
            if name not in category_trending:
                category_trending[name] = self.trending.put(
                    trending_key(name), second.get(trending_key(name))
                )

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
        body = Recommendations(
            user_id=user_id,
            items=_items(recs),
            model=MODEL_NAME,
            experiment_id=experiment_id,
            variant=variant.name,
            request_id=request_id or uuid.uuid4().hex,
            fallback=fallback,
            features_as_of=user.last_event_ms if user else None,
        )
        return RecommendationResult(body, experiment_id, variant.name, fallback, len(recs))

    def similar(self, item_id: str, *, k: int = K_DEFAULT) -> SimilarItems:
        """Co-visitation neighbours of one item (one read)."""
        profile = _item_row(
            self.reader.get_many([item_key(item_id)], consistent=False).get(item_key(item_id))
        )
        if profile is None:
            raise HttpError(ERROR_NOT_FOUND, f"no item {item_id} has been seen together with another")
        return SimilarItems(item_id, _items(similar_items(profile, k)), MODEL_NAME)

    def experiment(self, experiment_id: str) -> ExperimentResult:
        """Per-variant impressions, clicks, purchases, CTR and conversion with 95% Wilson intervals."""
        configured = next((e for e in self.settings.experiments if e.id == experiment_id), None)
        rows = {row.variant: row for row in self.reader.query_counters(experiment_id)}
        if configured is None and not rows:
            raise HttpError(ERROR_NOT_FOUND, f"no experiment {experiment_id}")
        names = [v.name for v in configured.variants] if configured else []
        names += sorted(name for name in rows if name not in names)
        weights = {v.name: v.weight for v in configured.variants} if configured else {}
        variants = []
        for name in names:
            row = rows.get(name)
            impressions = row.impressions if row else 0
            clicks = row.clicks if row else 0
            purchases = row.purchases if row else 0
            variants.append(
                VariantResult(
                    variant=name,
                    weight=weights.get(name),
                    impressions=impressions,
                    clicks=clicks,
                    purchases=purchases,
                    ctr=wilson(clicks, impressions),
                    conversion=wilson(purchases, impressions),
                )
            )
        return ExperimentResult(experiment_id, configured is not None, CONFIDENCE, variants)


def _item_row(row: Row | Unreadable | None) -> ItemRow | None:
    return row if isinstance(row, ItemRow) else None
