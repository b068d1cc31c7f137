"""The item aggregates: co-visitation rows, and how the aggregate branches turn records into effects.

An aggregator resolves each record against its user's row (written by the hot path, see
`features.user_fold`): the record's outbox entry says whether it has an aggregate effect and with which
partner. The effect of an item event B whose user looked at A just before it (same session) is one
co-visitation pair, added to both rows: A gains neighbour B and B gains neighbour A, weighted by B's
event type (purchase 4 > cart 3 > favourite 2 > view 1). Rows are read, changed and written back
conditional on their version; each row keeps, per stream shard, the highest sequence number applied to
it (rows are written by every shard's aggregator, one invocation per shard at a time: ParallelizationFactor
1 on the aggregate mappings), so a redelivered record changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

from streamrec_core.features.config import HOUR_MS, FeatureConfig
from streamrec_core.features.events import TYPE_WEIGHTS, Event
from streamrec_core.features.user_fold import (
    EXPERIMENT_EFFECT,
    ITEM_EFFECT,
    REDRIVEN,
    UserRow,
    Watermark,
    prune_watermarks,
)

# How a record resolves against its user's row.
READY: Final = "ready"  # the hot path has processed it; `effect` says what it does (None: nothing)
NOT_READY: Final = "not_ready"  # the hot path has not processed it yet: try again later
UNRESOLVED: Final = "unresolved"  # its outbox entry is gone (the aggregator lagged past the retention)


class Neighbour(NamedTuple):
    score: int  # sum of the type weights of the pairs
    category: str


@dataclass(slots=True)
class ItemRow:
    item_id: str
    version: int = 0
    expires_at: int = 0
    category: str = ""
    neighbours: dict[str, Neighbour] = field(default_factory=dict)
    watermarks: dict[str, Watermark] = field(default_factory=dict)


class Effect(NamedTuple):
    """What one record does to the aggregates (from the record and its outbox entry)."""

    item: str
    category: str
    event_type: str
    weight: int
    hour: int  # event-time hour
    received_ms: int
    pred: str  # '' when the event has no session partner
    pred_category: str
    experiment_id: str | None
    variant: str | None
    flags: int

    @property
    def item_effect(self) -> bool:
        return bool(self.flags & ITEM_EFFECT)

    @property
    def experiment_effect(self) -> bool:
        return bool(self.flags & EXPERIMENT_EFFECT)


def resolve(user: UserRow | None, event: Event, *, redriven: bool = False) -> tuple[str, Effect | None]:
    """(READY, effect or None) | (NOT_READY, None) | (UNRESOLVED, None) for one record.

    A record redrive applied to the user row has its aggregate effects applied by redrive too: the
    branches resolve it to no effect, and redrive (`redriven=True`) resolves only such records.
    """
    if user is None:
        return NOT_READY, None
    mark = user.watermark(event.shard_id)
    if mark is None or mark < event.seq:
        return NOT_READY, None
    entry = user.outbox_entry(event.shard_id, event.seqtag)
    if entry is None:
        if event.arrival_ms >= user.outbox_floor_ms:
            return READY, None
        return UNRESOLVED, None
    if bool(entry.flags & REDRIVEN) != redriven:
        return READY, None
    return READY, effect_of(event, entry.category, entry.pred, entry.pred_category, entry.flags)


def effect_of(event: Event, category: str, pred: str, pred_category: str, flags: int) -> Effect:
    return Effect(
        event.item_id or "",
        category,
        event.event_type,
        TYPE_WEIGHTS.get(event.event_type, 0),
        event.time_ms // HOUR_MS,
        event.received_ms,
        pred,
        pred_category,
        event.experiment_id,
        event.variant,
        flags,
    )


def pending(watermarks: dict[str, Watermark], event: Event) -> bool:
    """True when the record is above the row's watermark for its shard (not applied to the row yet)."""
    mark = watermarks.get(event.shard_id)
    return mark is None or int(mark.sequence_number) < event.seq


def mark_applied(watermarks: dict[str, Watermark], event: Event, cfg: FeatureConfig) -> None:
    """Record that the row holds every record of the event's shard up to and including this one."""
    mark = watermarks.get(event.shard_id)
    if mark is None or int(mark.sequence_number) < event.seq:
        watermarks[event.shard_id] = Watermark(event.sequence_number, event.arrival_ms)
    prune_watermarks(watermarks, event.arrival_ms, cfg.watermark_horizon_ms, cfg.shared_watermark_cap)


class PairUpdate(NamedTuple):
    """One side of a co-visitation pair: `item`'s row gains `other`."""

    item: str
    category: str  # the item's own category as the event resolved it
    other: str
    other_category: str


def pair_updates(effect: Effect) -> tuple[PairUpdate, ...]:
    """The rows an effect changes: both items of its pair (nothing when it has no session partner)."""
    if not effect.item_effect or not effect.pred or effect.pred == effect.item:
        return ()
    return (
        PairUpdate(effect.item, effect.category, effect.pred, effect.pred_category),
        PairUpdate(effect.pred, effect.pred_category, effect.item, effect.category),
    )


def apply_update(row: ItemRow, update: PairUpdate, effect: Effect, cfg: FeatureConfig) -> None:
    add_pair(row, update.other, update.other_category, effect.weight, cfg)
    touch(row, update.category, effect.received_ms, cfg)


def add_pair(row: ItemRow, other: str, other_category: str, weight: int, cfg: FeatureConfig) -> None:
    """Count one co-visitation of `row`'s item with `other`."""
    neighbours = row.neighbours
    found = neighbours.get(other)
    if found is None:
        neighbours[other] = Neighbour(weight, other_category)
        if len(neighbours) > cfg.covisit_max:
            ranked = sorted(neighbours.items(), key=lambda kv: (-kv[1].score, kv[0]))
            row.neighbours = dict(ranked[: cfg.covisit_keep])
    else:
        neighbours[other] = Neighbour(found.score + weight, found.category or other_category)


def touch(row: ItemRow, category: str, received_ms: int, cfg: FeatureConfig) -> None:
    """An item event reached the row: remember its category, extend its TTL."""
    if category:
        row.category = category
    expires = received_ms // 1000 + cfg.item_ttl_seconds
    if expires > row.expires_at:
        row.expires_at = expires
