"""The `covisit-v1` recommendation model. Pure Python, no AWS: rows in, ranked items out.

Reading is split in two so serve needs at most two DynamoDB round trips:

1. the user row and the merged global trending list;
2. `seed_items(user)` (co-visitation rows of the user's recent items) and `categories_to_fill(user)`
   (merged trending lists of the user's top categories, or of the requested category).

`recommend` then ranks:

- Candidates are the co-visitation neighbours of the user's recent distinct items. A seed's weight is
  its recency (half-life in positions, newest first) times the strongest interest the user showed in it
  (purchase > cart > favourite > view); a neighbour contributes the seed's weight times its share of the
  seed's best neighbour score.
- A candidate's score is boosted by the user's decayed affinity for its category, and again
  (`context_boost`) when it is in the category of the user's newest event: people browse within a
  category (on the Taobao clickstream 41% of next events stay in the current one), and this lifted
  validation HitRate@10 0.165 -> 0.170 and MRR@10 0.081 -> 0.090 (BENCHMARKS.md).
- `seen_age_hours` optionally discounts history items by the time since their last use (off by
  default: it raised MRR but lowered HitRate on validation).
- The user's own history items may come back (`seen_weight`): each past interaction adds its type
  weight, halved every `seen_half_life` entries back, so items looked at often and lately rank high
  (users return to what they looked at; measured on the Taobao clickstream, see BENCHMARKS.md).
- The item the user is looking at now (their newest distinct item, `skip_latest`) is left out: on the
  Taobao clickstream the next event is never on the same item, and leaving it out lifted validation
  HitRate@10 0.171 -> 0.175 and MRR@10 0.077 -> 0.084 (BENCHMARKS.md, "Recommendation quality").
- Items bought, items in `exclude`, and (with `category`) items of other categories are left out.
- The list is filled from the trending items of the user's categories, then global trending; a user
  without history (cold start) gets trending items only.

Ties are broken by item id, so the same rows always give the same list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from streamrec_core.features.events import TYPE_WEIGHTS
from streamrec_core.features.item_aggregates import ItemRow
from streamrec_core.features.trending import Trend
from streamrec_core.features.user_fold import UserRow
from streamrec_core.params import K_MAX

# Why an item is in a list (the `reason` of each item in the API's answers).
REASON_COVISIT = "covisit"
REASON_CATEGORY = "category"
REASON_TRENDING = "trending"
REASONS = (REASON_COVISIT, REASON_CATEGORY, REASON_TRENDING)


@dataclass(frozen=True, slots=True)
class ModelParams:
    """Tunables of covisit-v1; an experiment variant's `params` override them by name."""

    seed_items: int = 5  # distinct recent items whose neighbours are candidates
    recency_half_life: float = 2.0  # positions (newest distinct item = 0) over which a seed's weight halves
    affinity_boost: float = 0.5  # score x (1 + boost x affinity share of the item's category)
    seen_weight: float = 1.0  # weight of the user's own history items as candidates (0 = never)
    seen_half_life: float = 20.0  # history entries (newest = 0) over which a past interaction's weight halves
    # a history item's weight x (1 + hours since its last use / seen_age_hours) ** -seen_age_power (0 = off)
    seen_age_hours: float = 0.0
    seen_age_power: float = 0.5
    context_boost: float = 2.0  # score x (1 + boost) for items of the category the user is in right now
    fill_categories: int = 3  # top categories whose trending items fill the list
    skip_latest: int = 1  # the user's newest distinct items left out (the one they are looking at now)
    exclude_purchased: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> ModelParams:
        """Defaults overridden by known keys of `params` (unknown keys are ignored, wrong types rejected)."""
        if not params:
            return cls()
        values: dict[str, Any] = {}
        for spec in fields(cls):
            if spec.name not in params:
                continue
            raw = params[spec.name]
            default = getattr(cls(), spec.name)
            if isinstance(default, bool):
                if not isinstance(raw, bool):
                    raise ValueError(f"model parameter {spec.name} must be a boolean")
                values[spec.name] = raw
            elif isinstance(default, int):
                if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != int(raw) or raw < 0:
                    raise ValueError(f"model parameter {spec.name} must be a non-negative integer")
                values[spec.name] = int(raw)
            else:
                if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
                    raise ValueError(f"model parameter {spec.name} must be a non-negative number")
                values[spec.name] = float(raw)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Recommendation:
    item_id: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class Seed:
    item_id: str
    weight: float
    category: str


def seed_items(user: UserRow | None, params: ModelParams) -> list[Seed]:
    """The user's latest distinct items, newest first, weighted by recency and strongest interest."""
    if not user:
        return []
    interest: dict[str, int] = {}
    order: list[tuple[str, str]] = []
    for item, event_type, _when, category in reversed(user.history):
        weight = TYPE_WEIGHTS.get(event_type, 1)
        if item not in interest:
            if len(order) >= params.seed_items:
                continue
            order.append((item, category))
            interest[item] = weight
        elif weight > interest[item]:
            interest[item] = weight
    half_life = params.recency_half_life
    seeds = []
    for position, (item, category) in enumerate(order):
        recency = 0.5 ** (position / half_life) if half_life > 0 else (1.0 if position == 0 else 0.0)
        seeds.append(Seed(item, recency * interest[item], category))
    return seeds


def latest_items(user: UserRow, count: int) -> list[str]:
    """The user's `count` newest distinct history items, newest first."""
    found: list[str] = []
    for item, _type, _when, _category in reversed(user.history):
        if len(found) >= count:
            break
        if item not in found:
            found.append(item)
    return found


def seen_items(user: UserRow, params: ModelParams) -> list[tuple[str, float, str]]:
    """The user's history items with a revisit weight: type weights of their interactions, decayed by age."""
    history = user.history
    if not history:
        return []
    half_life = params.seen_half_life
    weights: dict[str, float] = {}
    categories: dict[str, str] = {}
    for position, (item, event_type, _when, category) in enumerate(reversed(history)):
        decay = 0.5 ** (position / half_life) if half_life > 0 else (1.0 if position == 0 else 0.0)
        weights[item] = weights.get(item, 0.0) + TYPE_WEIGHTS.get(event_type, 1) * decay
        if category and item not in categories:
            categories[item] = category
    if params.seen_age_hours > 0:
        scale_ms = params.seen_age_hours * 3_600_000
        newest_ms = float(history[-1][2])
        discounted: set[str] = set()
        for item, _type, when, _category in reversed(history):  # newest first: the item's last use
            if item not in discounted:
                discounted.add(item)
                age = max(newest_ms - float(when), 0.0)
                weights[item] *= (1.0 + age / scale_ms) ** -params.seen_age_power
    return [(item, weight, categories.get(item, "")) for item, weight in weights.items()]


def top_categories(user: UserRow | None, limit: int) -> list[str]:
    """The user's categories by decayed affinity, strongest first."""
    if not user or limit <= 0:
        return []
    affinity: Mapping[str, float] = user.affinity
    ranked = sorted(affinity.items(), key=lambda kv: (-float(kv[1]), kv[0]))
    return [name for name, score in ranked[:limit] if float(score) > 0]


def categories_to_fill(user: UserRow | None, params: ModelParams, category: str | None) -> list[str]:
    """Categories whose trending lists fill the result: the requested one, else the user's top ones."""
    if category:
        return [category]
    return top_categories(user, params.fill_categories)


def recommend(
    user: UserRow | None,
    profiles: Mapping[str, ItemRow | None],
    category_trending: Mapping[str, Sequence[Trend]],
    global_trending: Sequence[Trend],
    *,
    k: int,
    params: ModelParams,
    category: str | None = None,
    exclude: Iterable[str] = (),
) -> tuple[list[Recommendation], bool]:
    """Rank up to `k` items for a user; returns (items, used_fallback).

    `profiles` maps item id -> co-visitation row for (at least) the seed items; `category_trending`
    maps category -> merged trending list (item, score, category) as `features.trending.merge` gives.
    `used_fallback` is True when no co-visitation candidate was found (cold start included).
    """
    if not 1 <= k <= K_MAX:
        raise ValueError(f"k must be between 1 and {K_MAX}")
    banned = set(exclude)
    if params.exclude_purchased and user:
        banned.update(user.bought)
    if params.skip_latest > 0 and user:
        banned.update(latest_items(user, params.skip_latest))

    def allowed(item: str, item_category: str) -> bool:
        if item in banned:
            return False
        return not category or item_category == category

    seeds = seed_items(user, params)
    scores: dict[str, float] = {}
    item_categories: dict[str, str] = {}
    for seed in seeds:
        item_categories.setdefault(seed.item_id, seed.category)
        profile = profiles.get(seed.item_id)
        neighbours = profile.neighbours if profile else {}
        if profile and profile.category:
            item_categories[seed.item_id] = profile.category
        best = max((float(entry.score) for entry in neighbours.values()), default=0.0)
        if best > 0:
            for other, (score, other_category) in neighbours.items():
                scores[other] = scores.get(other, 0.0) + seed.weight * float(score) / best
                if other_category:
                    item_categories.setdefault(other, other_category)

    if params.seen_weight > 0 and user:
        for item, weight, seen_category in seen_items(user, params):
            scores[item] = scores.get(item, 0.0) + params.seen_weight * weight
            if seen_category:
                item_categories.setdefault(item, seen_category)

    affinity: Mapping[str, float] = user.affinity if user else {}
    top_affinity = max((float(v) for v in affinity.values()), default=0.0)
    if params.affinity_boost > 0 and top_affinity > 0:
        for item in scores:
            share = float(affinity.get(item_categories.get(item, ""), 0.0)) / top_affinity
            scores[item] *= 1.0 + params.affinity_boost * share

    history = user.history if user else []
    context = history[-1].category if history else ""
    if params.context_boost > 0 and context:
        for item in scores:
            if item_categories.get(item) == context:
                scores[item] *= 1.0 + params.context_boost

    ranked = sorted(
        (
            (item, score)
            for item, score in scores.items()
            if score > 0 and allowed(item, item_categories.get(item, ""))
        ),
        key=lambda kv: (-kv[1], kv[0]),
    )
    result = [Recommendation(item, score, REASON_COVISIT) for item, score in ranked[:k]]
    used_fallback = not result
    chosen = {r.item_id for r in result}
    floor = min((r.score for r in result), default=1.0)

    def fill(candidates: Sequence[Trend], reason: str) -> None:
        nonlocal floor
        if len(result) >= k or not candidates:
            return
        top = max((score for _, score, _ in candidates), default=0.0) or 1.0
        tier_top = min(floor, 1.0) * 0.5
        for item, score, item_category in candidates:
            if len(result) >= k:
                break
            if item in chosen or not allowed(item, item_category):
                continue
            value = tier_top * max(score, 0.0) / top
            result.append(Recommendation(item, value, reason))
            chosen.add(item)
            floor = min(floor, value) if value > 0 else floor

    for name in categories_to_fill(user, params, category):
        fill(category_trending.get(name, ()), REASON_CATEGORY)
    fill(global_trending, REASON_TRENDING)
    return result, used_fallback


def similar_items(profile: ItemRow | None, k: int, exclude: Iterable[str] = ()) -> list[Recommendation]:
    """An item's co-visitation neighbours, best first (score = share of the best neighbour's score)."""
    if not 1 <= k <= K_MAX:
        raise ValueError(f"k must be between 1 and {K_MAX}")
    if not profile:
        return []
    banned = set(exclude)
    neighbours = profile.neighbours
    best = max((float(entry.score) for entry in neighbours.values()), default=0.0)
    if best <= 0:
        return []
    ranked = sorted(
        ((item, float(entry.score) / best) for item, entry in neighbours.items() if item not in banned),
        key=lambda kv: (-kv[1], kv[0]),
    )
    return [Recommendation(item, score, REASON_COVISIT) for item, score in ranked[:k]]
