"""Trending: one partial row per stream shard, merged into the lists serve reads.

No key is hot at any rate: each shard's aggregator adds its records to its own partial (one write per
batch), and the merged lists (global, and one per category) are rewritten at most once per
`merge_interval_ms` by whichever aggregator finds them due, from all partials in one Query. Scores are
decayed sums of type weights in event-time hours (half-life `trending_half_life_hours`); a partial keeps
each item's score decayed to the hour it last changed, and merging decays every share to the newest hour.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.decay import hour_decay
from streamrec_core.features.user_fold import Watermark


class TrendEntry(NamedTuple):
    score: float  # decayed to `hour`
    hour: int
    category: str


@dataclass(slots=True)
class PartialRow:
    shard_id: str
    version: int = 0
    expires_at: int = 0
    entries: dict[str, TrendEntry] = field(default_factory=dict)
    max_hour: int = 0
    watermark: Watermark | None = None  # the shard's highest sequence number applied here


class Trend(NamedTuple):
    item: str
    score: float
    category: str


@dataclass(slots=True)
class TrendingList:
    category: str | None  # None: the global list
    version: int = 0
    expires_at: int = 0
    items: list[Trend] = field(default_factory=list)  # best first
    merged_ms: int = 0  # wall-clock time of the merge that wrote it


def add(partial: PartialRow, item: str, category: str, hour: int, weight: int, cfg: FeatureConfig) -> None:
    """Add one event's weight to a shard's partial, decayed in event-time hours."""
    decay = hour_decay(cfg.trending_half_life_hours)
    entries = partial.entries
    found = entries.get(item)
    if found is None:
        entries[item] = TrendEntry(float(weight), hour, category)
    elif hour >= found.hour:
        entries[item] = TrendEntry(
            found.score * decay(hour - found.hour) + weight, hour, found.category or category
        )
    else:
        entries[item] = TrendEntry(
            found.score + weight * decay(found.hour - hour), found.hour, found.category or category
        )
    if hour > partial.max_hour:
        partial.max_hour = hour
    if len(entries) > cfg.partial_max:
        now = partial.max_hour
        ranked = sorted(entries.items(), key=lambda kv: (-kv[1].score * decay(now - kv[1].hour), kv[0]))
        partial.entries = dict(ranked[: cfg.partial_keep])


def merge(partials: Iterable[PartialRow], cfg: FeatureConfig) -> tuple[list[Trend], dict[str, list[Trend]]]:
    """The global list and the per-category lists from every shard's partial (sorted by score, then id).

    Deterministic for a given set of partials: shares are summed in shard order.
    """
    rows = sorted((p for p in partials if p.entries), key=lambda p: p.shard_id)
    if not rows:
        return [], {}
    decay = hour_decay(cfg.trending_half_life_hours)
    now = max(p.max_hour for p in rows)
    totals: dict[str, float] = {}
    categories: dict[str, str] = {}
    for partial in rows:
        for item, entry in partial.entries.items():
            totals[item] = totals.get(item, 0.0) + entry.score * decay(now - entry.hour)
            if entry.category and item not in categories:
                categories[item] = entry.category
    ranked = [Trend(item, score, categories.get(item, "")) for item, score in totals.items()]
    ranked.sort(key=lambda t: (-t.score, t.item))
    by_category: dict[str, list[Trend]] = {}
    for trend in ranked:
        if trend.category:
            listed = by_category.setdefault(trend.category, [])
            if len(listed) < cfg.category_list_size:
                listed.append(trend)
    return ranked[: cfg.global_list_size], by_category
