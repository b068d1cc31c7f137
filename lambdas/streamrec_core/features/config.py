"""Tunables of the feature model, one frozen object per function (validated environment -> here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streamrec_core import constants as c
from streamrec_core.env import require_int

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Bounds keep every row small: a user row is paid on every event of its user (aim: <= 1 KB), an
    item row on every batch that touches the item. The defaults are measured choices (BENCHMARKS.md)."""

    user_ttl_seconds: int
    item_ttl_seconds: int
    allowed_lateness_ms: int
    # --- the user row (hot path) ---
    history_cap: int = 50  # fewer lowers HitRate@10 on the Taobao split (30: 0.1806 -> 0.177)
    affinity_cap: int = 20
    affinity_half_life_ms: int = 3 * DAY_MS
    bought_cap: int = 20
    # Event-id digests kept for client-resend dedup: every event received within the window, and at
    # least the latest `dedup_min`, at most `dedup_cap`.
    dedup_window_ms: int = 15 * MINUTE_MS
    dedup_min: int = 16
    dedup_cap: int = 64
    # What the hot path hands to the aggregate branches (features.user_fold.OutboxEntry): kept for
    # `outbox_retention_ms` of arrival time, at most `outbox_cap` entries. An aggregate consumer that
    # lags more than this cannot resolve a record any more (counted, never guessed).
    outbox_retention_ms: int = 10 * MINUTE_MS
    outbox_cap: int = 256
    # A shard's watermark on a row is dropped after this long without a write from it: no record of that
    # shard can come back by then (record age + on-failure queue retention are far shorter).
    watermark_horizon_ms: int = 20 * DAY_MS
    watermark_cap: int = 32
    # --- co-visitation (aggregate branch) ---
    session_gap_ms: int = 30 * MINUTE_MS
    covisit_max: int = 40  # a neighbour map growing past this ...
    covisit_keep: int = 30  # ... is cut to the best this many
    # --- trending (aggregate branch) ---
    trending_half_life_hours: float = 6.0
    partial_max: int = 200  # a shard's partial growing past this ...
    partial_keep: int = 150  # ... is cut to the best this many
    global_list_size: int = 100
    category_list_size: int = 50
    merge_interval_ms: int = 15_000
    # Rows touched by many shards (hot items, counters) keep more shard watermarks.
    shared_watermark_cap: int = 512

    def __post_init__(self) -> None:
        if not 0 < self.covisit_keep <= self.covisit_max:
            raise ValueError("need 0 < covisit_keep <= covisit_max")
        if not 0 < self.partial_keep <= self.partial_max:
            raise ValueError("need 0 < partial_keep <= partial_max")
        if not 0 < self.dedup_min <= self.dedup_cap:
            raise ValueError("need 0 < dedup_min <= dedup_cap")
        if self.history_cap < 1 or self.outbox_cap < 1:
            raise ValueError("history_cap and outbox_cap must be >= 1")


def feature_config_from_env(env: Mapping[str, str]) -> FeatureConfig:
    """The FeatureConfig CDK set for a function; ConfigError names the first bad variable."""
    return FeatureConfig(
        user_ttl_seconds=require_int(env, c.ENV_USER_TTL_SECONDS, minimum=1),
        item_ttl_seconds=require_int(env, c.ENV_ITEM_TTL_SECONDS, minimum=1),
        allowed_lateness_ms=require_int(env, c.ENV_ALLOWED_LATENESS_SECONDS, minimum=0) * 1000,
        outbox_retention_ms=require_int(env, c.ENV_OUTBOX_RETENTION_SECONDS, minimum=60) * 1000,
    )
